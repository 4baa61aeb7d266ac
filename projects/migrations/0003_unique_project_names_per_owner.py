"""Project names become unique per owner (projects/services.py refuses a taken name): projects
an owner already holds under the same name (compared case-insensitively) are renamed, the
oldest keeping its name and the others becoming "Alpha (2)", "Alpha (3)"... Each rename is
printed. Slugs, and so every shared URL, stay as they were. Not reversed (the old names are
printed): reversing leaves the new names.
"""

from django.db import migrations


def rename_duplicates(apps, schema_editor):
    Membership = apps.get_model("projects", "Membership")
    Project = apps.get_model("projects", "Project")
    owned: dict[int, list] = {}
    rows = (
        Membership.objects.filter(role="owner")
        .order_by("user_id", "project__created_at", "project_id")
        .values_list("user_id", "project_id")
    )
    for user_id, project_id in rows:
        owned.setdefault(user_id, []).append(project_id)
    for project_ids in owned.values():
        projects = list(Project.objects.filter(pk__in=project_ids))
        projects.sort(key=lambda p: project_ids.index(p.pk))
        taken = {p.name.lower() for p in projects}
        seen: set[str] = set()
        for project in projects:
            key = project.name.lower()
            if key not in seen:
                seen.add(key)
                continue
            n = 2
            while f"{project.name} ({n})".lower() in taken:
                n += 1
            new_name = f"{project.name[:90]} ({n})"
            print(f"\n  renamed project {project.slug}: {project.name!r} -> {new_name!r}")
            taken.add(new_name.lower())
            seen.add(new_name.lower())
            project.name = new_name
            project.save(update_fields=["name"])


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0002_key_token_and_span_use"),
    ]

    operations = [
        migrations.RunPython(rename_duplicates, migrations.RunPython.noop, elidable=False),
    ]
