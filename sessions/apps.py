from django.apps import AppConfig


class AgentSessionsConfig(AppConfig):
    # "sessions" is django.contrib.sessions' label; ours must differ.
    name = "sessions"
    label = "agent_sessions"
    verbose_name = "Agent sessions"
