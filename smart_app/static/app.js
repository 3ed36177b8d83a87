// The print button (no inline script: the page's CSP is script-src 'self').
document.addEventListener("click", function (event) {
  if (event.target && event.target.id === "print") {
    window.print();
  }
});
