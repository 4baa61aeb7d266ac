"""AgentOps v2 (REST, JSON): what the official SDK 0.3.x and our SDK in sdk/ speak."""
