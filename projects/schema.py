"""How the OpenAPI document describes our two credentials."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "projects.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-Agentops-Api-Key"}


class SessionTokenScheme(OpenApiAuthenticationExtension):
    target_class = "projects.auth.SessionTokenAuthentication"
    name = "SessionJWT"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
