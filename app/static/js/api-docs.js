// Started from a file (not inline) so the Content-Security-Policy can forbid inline scripts.
const root = document.getElementById("swagger-ui");
window.SwaggerUIBundle({ url: root.dataset.specUrl, domNode: root, deepLinking: true });
