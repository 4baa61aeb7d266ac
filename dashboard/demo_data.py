"""A realistic demo dataset for `make run`, sent through the real v2 ingestion endpoints with the
demo project's API key, exactly as an SDK would: create_session, create_agent, create_events,
update_session. Loaded only while the demo project has no sessions."""

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from django.test import Client

from sessions.models import Session

MODELS = [
    # (model, prompt price hint only for variety of token sizes)
    ("gpt-4o", 900),
    ("gpt-4o-mini", 600),
    ("claude-3-5-sonnet-20241022", 1400),
    ("claude-3-5-haiku-20241022", 500),
    ("o3-mini", 1100),
]
AGENT_TAGS = ["support-bot", "research-agent", "code-reviewer", "travel-planner"]
ENV_TAGS = ["prod", "staging"]
TOOLS = {
    "search_web": ({"query": "refund policy for annual plans"}, {"results": 3, "top": "Refunds…"}),
    "lookup_order": ({"order_id": "A-10293"}, {"status": "shipped", "carrier": "DHL"}),
    "run_tests": ({"path": "tests/", "k": "billing"}, {"passed": 41, "failed": 1}),
    "get_weather": ({"city": "Lisbon"}, {"temp_c": 22, "sky": "clear"}),
    "read_file": ({"path": "src/app.py"}, "def main():\n    ..."),
}
QUESTIONS = [
    "A customer asks whether they can get a refund 40 days after buying an annual plan.",
    "Summarise the three most cited papers on retrieval-augmented generation.",
    "Review this diff: the billing module now rounds amounts with float().",
    "Plan a 3-day trip to Lisbon in May for two people on a mid-range budget.",
]
REASONS = {
    "Success": ["Task completed", "Answered the user", "All checks passed"],
    "Fail": ["Tool raised an exception", "Model refused the request", "Timeout waiting for tool"],
    "Indeterminate": ["Process exited without end_session", "Session timed out", ""],
}
TRACEBACK = """Traceback (most recent call last):
  File "/app/agent/tools.py", line 88, in call_tool
    result = TOOLS[name](**params)
  File "/app/agent/tools.py", line 41, in lookup_order
    raise {etype}(f"order {{order_id}} not found")
{etype}: order A-10293 not found"""


@dataclass
class DemoResult:
    sessions: int
    events: int
    skipped: bool


def _iso(moment: datetime) -> str:
    return moment.isoformat()


class _Sdk:
    """The v2 protocol spoken through Django's test client: no server process needed."""

    def __init__(self, api_key: str):
        self.client = Client(SERVER_NAME="localhost")
        self.api_key = api_key

    def post(self, path: str, body: dict, *, jwt: str | None = None) -> dict:
        headers = (
            {"HTTP_AUTHORIZATION": f"Bearer {jwt}"}
            if jwt
            else {"HTTP_X_AGENTOPS_API_KEY": self.api_key}
        )
        response = self.client.post(
            path, data=orjson.dumps(body), content_type="application/json", **headers
        )
        if response.status_code != 200:
            raise RuntimeError(
                f"{path} answered {response.status_code}: {response.content[:300]!r}"
            )
        return orjson.loads(response.content) if response.content else {}


def _llm_event(rng: random.Random, at: datetime, model: str, size: int, question: str, step: int):
    prompt_tokens = rng.randint(size // 2, size * 2)
    completion_tokens = rng.randint(40, 600)
    latency = timedelta(milliseconds=rng.randint(400, 6000))
    messages = [
        {"role": "system", "content": "You are a careful assistant. Use tools when needed."},
        {"role": "user", "content": question},
    ]
    if step:
        messages.append({"role": "assistant", "content": f"(step {step}) I looked this up."})
        messages.append(
            {"role": "tool", "content": '{"results": 3}', "tool_call_id": f"call_{step}"}
        )
    answer = rng.choice(
        [
            "Based on the policy, refunds are possible within 30 days; after that, offer credit.",
            "Here is a summary with the three papers and what each contributes.",
            "Using float for money loses cents: switch to Decimal and quantize to 0.01.",
            "Day 1: Alfama and the castle. Day 2: Belém. Day 3: Sintra by train.",
        ]
    )
    return {
        "id": str(uuid.uuid4()),
        "event_type": "llms",
        "init_timestamp": _iso(at),
        "end_timestamp": _iso(at + latency),
        "model": model,
        "prompt": messages,
        "completion": {"role": "assistant", "content": answer},
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "thread_id": str(uuid.uuid4()),
    }, at + latency


def load_demo_dataset(*, project, api_key: str, days: int = 14, seed: int = 7) -> DemoResult:
    """Sends ~40 sessions over the last `days` days; does nothing when the project has any."""
    if Session.objects.filter(project=project).exists():
        return DemoResult(0, 0, skipped=True)
    rng = random.Random(seed)
    sdk = _Sdk(api_key)
    now = datetime.now(UTC)
    # Every end state several times, plus two still running.
    states = ["Success"] * 22 + ["Fail"] * 9 + ["Indeterminate"] * 6 + [None] * 2
    rng.shuffle(states)
    total_events = 0
    for i, state in enumerate(states):
        if state is None:
            start = now - timedelta(minutes=rng.randint(2, 20))
        else:
            start = now - timedelta(days=(days * i) / len(states), minutes=rng.randint(0, 600))
        agent_tag = rng.choice(AGENT_TAGS)
        tags = [agent_tag, rng.choice(ENV_TAGS)] + (["experiment-42"] if rng.random() < 0.2 else [])
        session_id = str(uuid.uuid4())
        created = sdk.post(
            "/v2/create_session",
            {
                "session": {
                    "session_id": session_id,
                    "init_timestamp": _iso(start),
                    "tags": tags,
                    "host_env": {
                        "SDK": {"AgentOps SDK Version": "0.3.26", "Python Version": "3.11.9"},
                        "OS": {"OS": rng.choice(["Linux", "Darwin"]), "OS Release": "6.1"},
                        "CPU": {"Physical cores": 8, "CPU Usage": f"{rng.randint(5, 80)}%"},
                    },
                }
            },
        )
        jwt = created["jwt"]
        agent_id = str(uuid.uuid4())
        sdk.post("/v2/create_agent", {"id": agent_id, "name": agent_tag}, jwt=jwt)
        model, size = rng.choice(MODELS)
        question = QUESTIONS[AGENT_TAGS.index(agent_tag)]
        events, at = [], start + timedelta(milliseconds=300)
        for step in range(rng.randint(2, 6)):
            if rng.random() < 0.25:
                model, size = rng.choice(MODELS)
            event, at = _llm_event(rng, at, model, size, question, step)
            event["agent_id"] = agent_id
            events.append(event)
            tool_name = rng.choice(list(TOOLS))
            params, returns = TOOLS[tool_name]
            tool_end = at + timedelta(milliseconds=rng.randint(50, 2500))
            tool = {
                "id": str(uuid.uuid4()),
                "event_type": "tools",
                "init_timestamp": _iso(at),
                "end_timestamp": _iso(tool_end),
                "name": tool_name,
                "params": params,
                "returns": returns,
                "agent_id": agent_id,
            }
            events.append(tool)
            at = tool_end
            if rng.random() < 0.3:
                action_end = at + timedelta(milliseconds=rng.randint(20, 400))
                events.append(
                    {
                        "id": str(uuid.uuid4()),
                        "event_type": "actions",
                        "init_timestamp": _iso(at),
                        "end_timestamp": _iso(action_end),
                        "action_type": rng.choice(["send_email", "click", "write_file"]),
                        "params": {"to": "customer@example.com"},
                        "returns": "ok",
                        "logs": None,
                        "agent_id": agent_id,
                    }
                )
                at = action_end
            if (state == "Fail" and step == 1) or rng.random() < 0.06:
                etype = rng.choice(["KeyError", "TimeoutError", "ValueError"])
                events.append(
                    {
                        "id": str(uuid.uuid4()),
                        "event_type": "errors",
                        "init_timestamp": _iso(at),
                        "end_timestamp": _iso(at),
                        "error_type": etype,
                        "code": "TOOL_FAILED",
                        "details": f"{tool_name} failed for params {params}",
                        "logs": TRACEBACK.format(etype=etype),
                        "trigger_event_id": tool["id"],
                        "trigger_event_type": "tools",
                    }
                )
            at += timedelta(milliseconds=rng.randint(100, 1500))
        result = sdk.post("/v2/create_events", {"events": events}, jwt=jwt)
        if result.get("rejected"):
            raise RuntimeError(f"demo events rejected: {result['rejected'][:2]}")
        total_events += len(events)
        if state is not None:
            sdk.post(
                "/v2/update_session",
                {
                    "session": {
                        "session_id": session_id,
                        "end_timestamp": _iso(at + timedelta(milliseconds=200)),
                        "end_state": state,
                        "end_state_reason": rng.choice(REASONS[state]),
                        "tags": tags,
                    }
                },
                jwt=jwt,
            )
    return DemoResult(len(states), total_events, skipped=False)
