from datetime import UTC, datetime, time, timedelta

from django import forms
from django.contrib.auth import get_user_model

from dashboard.overview import RANGES
from events.models import EventType
from projects.models import Membership
from sessions.queries import DEFAULT_SORT, END_STATE_FILTERS, SORTS, SessionFilters


class TagsField(forms.Field):
    """Repeated ?tag=... parameters, free text (tags are whatever the agents sent)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        return [v.strip() for v in value or () if v and v.strip()][:20]

    def validate(self, value):
        if any(len(v) > 200 for v in value):
            raise forms.ValidationError("A tag is at most 200 characters.")


class SessionFilterForm(forms.Form):
    """The session list's filters, read from the query string so a filtered view is a URL."""

    tag = TagsField(required=False)
    tag_mode = forms.ChoiceField(choices=[("all", "all tags"), ("any", "any tag")], required=False)
    end_state = forms.ChoiceField(
        choices=[("", "Any end state")] + [(s, s.capitalize()) for s in END_STATE_FILTERS],
        required=False,
    )
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    has_errors = forms.ChoiceField(
        choices=[("", "Errors or not"), ("yes", "With errors"), ("no", "Without errors")],
        required=False,
    )
    model = forms.CharField(required=False, max_length=200)
    q = forms.CharField(required=False, max_length=200)
    sort = forms.ChoiceField(choices=[(s.key, s.label) for s in SORTS.values()], required=False)

    def filters(self) -> SessionFilters:
        """The filters of a valid form; an invalid field is dropped rather than failing the page."""
        data = self.cleaned_data if self.is_valid() else self._valid_part()
        since = data.get("since")
        until = data.get("until")
        has_errors = {"yes": True, "no": False}.get(data.get("has_errors") or "")
        return SessionFilters(
            tags=tuple(data.get("tag") or ()),
            tag_mode="any" if data.get("tag_mode") == "any" else "all",
            end_state=data.get("end_state") or None,
            since=datetime.combine(since, time.min, tzinfo=UTC) if since else None,
            # The "until" date is inclusive on the page: up to the end of that day.
            until=datetime.combine(until, time.min, tzinfo=UTC) + timedelta(days=1)
            if until
            else None,
            has_errors=has_errors,
            model=data.get("model") or None,
            text=data.get("q") or None,
        )

    def _valid_part(self) -> dict:
        return {k: v for k, v in getattr(self, "cleaned_data", {}).items() if k not in self.errors}

    @property
    def sort_key(self) -> str:
        if self.is_valid():
            return self.cleaned_data.get("sort") or DEFAULT_SORT
        return DEFAULT_SORT


class RangeForm(forms.Form):
    range = forms.ChoiceField(choices=list(RANGES.items()), required=False)
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class EventFilterForm(forms.Form):
    type = forms.ChoiceField(choices=[("", "All events"), *list(EventType.choices)], required=False)
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)
    focus = forms.UUIDField(required=False)


class KeyCreateForm(forms.Form):
    label = forms.CharField(
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "e.g. production agents"}),
    )


class ProjectNameForm(forms.Form):
    name = forms.CharField(max_length=100)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("A project needs a name.")
        return name


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise forms.ValidationError(f"There is no user named {username!r}.")
        self.cleaned_data["user"] = user
        return username
