from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"

    def ready(self):
        from projects import schema  # noqa: F401  (registers the OpenAPI auth extensions)
