// Starts Swagger UI on /openapi.json of this same gateway. Kept apart from the vendored bundle
// (swagger-ui-bundle.js, unmodified) so that file can be checked against its published hash.
// validatorUrl null: the default would send the document to an outside validator service.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 1,
    tryItOutEnabled: false,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
