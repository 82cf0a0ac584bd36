// Swagger UI for this server's /openapi.json; nothing is fetched from anywhere else.
window.ui = SwaggerUIBundle({
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  // The default sends the document to validator.swagger.io and shows its badge.
  validatorUrl: null,
});
