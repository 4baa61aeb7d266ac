
from django import forms
from django.contrib.auth import get_user_model

from dashboard.overview import RANGES
from events.models import EventType
from projects.models import Membership
from sessions.filters import ParsedFilters, error_messages, parse_session_filters
from sessions.queries import END_STATE_FILTERS, SORTS, SessionFilters


class TagsField(forms.Field):
    """Repeated ?tag=... parameters, free text (tags are whatever the agents sent)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        return [v.strip() for v in value or () if v and v.strip()][:20]

    def validate(self, value):
        if any(len(v) > 200 for v in value):
            raise forms.ValidationError("A tag is at most 200 characters.")


class SessionFilterForm(forms.Form):
    """The session list's filter widgets; what the query string means, and which values are
    invalid, is sessions.filters' (the same as GET /v2/sessions)."""

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

    def parsed(self) -> ParsedFilters:
        """The filters as sessions.filters reads them (the API's rules and messages)."""
        if not hasattr(self, "_parsed"):
            self._parsed = parse_session_filters(self.data)
        return self._parsed

    def filters(self) -> SessionFilters:
        """The valid filters; an invalid one is left out and named in filter_errors."""
        return self.parsed().filters

    @property
    def filter_errors(self) -> list[str]:
        return error_messages(self.parsed().errors)

    @property
    def sort_key(self) -> str:
        return self.parsed().sort


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


class ProjectDeleteForm(forms.Form):
    """Deleting a project asks for its name typed again, exactly."""

    confirm = forms.CharField(max_length=100, label="Type the project's name to confirm")

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project

    def clean_confirm(self):
        typed = self.cleaned_data["confirm"].strip()
        if typed != self.project.name:
            raise forms.ValidationError(
                f"Type the project's name, {self.project.name}, exactly to delete it."
            )
        return typed


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
