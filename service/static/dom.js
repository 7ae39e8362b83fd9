// Small helpers for building the page's elements.

export const $ = (id) => document.getElementById(id);

/** A new HTML element with a class and, optionally, text. */
export function element(tag, className = "", text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

/** A new `<button type="button">` that calls `onClick`; `label` names it for screen readers. */
export function button(text, className, onClick, label = "") {
  const node = element("button", className, text);
  node.type = "button";
  if (label) node.setAttribute("aria-label", label);
  node.addEventListener("click", onClick);
  return node;
}

/** A text's first letter in upper case: the server's details start in lower case. */
export function capitalise(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A section's two message lines: a polite status and an assertive error. */
export function messages(status, error) {
  return {
    say: (text) => (status.textContent = text),
    showError: (text) => (error.textContent = text),
    clear() {
      status.textContent = "";
      error.textContent = "";
    },
  };
}
