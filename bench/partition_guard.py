"""What the ingest statement's cross-partition id probe costs (events/storage/postgres.py,
_STORED_UNDER_ANOTHER_TIME): ingest_events() of 100-event batches into a new session on the
bench/scale.py dataset, with the statement as shipped and with the probe taken out of it (in
this process only), alternating, 3 rounds of 40 batches each; the median ms per batch after 5
warm-up batches. Rollups are left out (schedule_rollups patched, as bench/rollups.py does).

    .venv/bin/python bench/partition_guard.py      # after bench/scale.py
"""

import json
import os
import random
import time
import uuid
from datetime import timedelta
from unittest import mock

from common import median, report, sdk_batch, setup_django
from generate import DATASET_FILE

PROBE = " AND NOT EXISTS ({_STORED_UNDER_ANOTHER_TIME})"


def run(sql: str, project_id, key_id, seed: int) -> float:
    from django.db import connection
    from django.utils import timezone

    from events.ingest import ingest_events
    from events.storage import postgres
    from sessions.models import Session

    postgres._INGEST_SQL = sql
    now = timezone.now()
    session = Session.objects.create(
        id=uuid.uuid4(), project_id=project_id, init_timestamp=now, last_seen_at=now
    )
    rng = random.Random(seed)
    times = []
    with mock.patch("events.ingest.schedule_rollups"):
        for n in range(40):
            batch = sdk_batch(rng, now + timedelta(seconds=n))
            started = time.perf_counter()
            ingest_events(
                session_id=session.id, project_id=project_id, key_id=key_id, raw_events=batch
            )
            times.append((time.perf_counter() - started) * 1000)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM events_event WHERE session_id = %s", [session.id])
    session.delete()
    return median(times[5:])


def main() -> None:
    dataset = json.loads(DATASET_FILE.read_text())
    setup_django(dataset["database_url"])
    from events.storage import postgres
    from projects.models import ApiKey

    project_id = uuid.UUID(dataset["project_id"])
    key_id = ApiKey.objects.filter(project_id=project_id, revoked_at__isnull=True).values_list(
        "pk", flat=True
    )[0]
    shipped = postgres._INGEST_SQL
    without = shipped.replace(
        PROBE.format(_STORED_UNDER_ANOTHER_TIME=postgres._STORED_UNDER_ANOTHER_TIME), ""
    )
    assert without != shipped, "the probe is no longer in the statement"
    with_probe, without_probe = [], []
    for n in range(3):
        with_probe.append(run(shipped, project_id, key_id, n))
        without_probe.append(run(without, project_id, key_id, n))
    report(
        "partition_guard",
        events=dataset["events"],
        with_probe_ms=[round(x, 1) for x in with_probe],
        without_probe_ms=[round(x, 1) for x in without_probe],
        ratio=round(median(with_probe) / median(without_probe), 2),
        load=[round(x, 2) for x in os.getloadavg()],
    )


if __name__ == "__main__":
    main()
