"""Forms built from parameter specs (the Run dialog)."""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput

from . import maintenance, params, secrets
from .text import storable, value_problem

WIDGETS = {
    "date": lambda: forms.DateInput(attrs={"type": "date"}),
    "datetime": lambda: forms.DateTimeInput(attrs={"type": "datetime-local"}),
}


def field_for(spec: dict) -> forms.Field:
    kind = spec.get("type", "str")
    common = {
        "label": spec.get("label") or spec["name"],
        "required": bool(spec.get("required")) and kind != "bool",
        "help_text": spec.get("help", ""),
        "initial": spec.get("default"),
    }
    if kind == "int":
        return forms.IntegerField(**common)
    if kind == "float":
        return forms.FloatField(**common)
    if kind == "bool":
        return forms.BooleanField(**common)
    if kind == "date":
        return forms.DateField(widget=WIDGETS["date"](), **common)
    if kind == "datetime":
        return forms.DateTimeField(widget=WIDGETS["datetime"](), **common)
    if spec.get("pattern") and kind in params.PATTERN_TYPES:
        common["validators"] = [pattern_validator(spec["pattern"])]
        common["help_text"] = " ".join(filter(None, [common["help_text"], f"Must match: {spec['pattern']}"]))
    if kind == "email":
        return forms.EmailField(**common)
    if kind == "choice":
        choices = [("", "---------")] + [(str(c), str(c)) for c in spec.get("choices", [])]
        return forms.ChoiceField(choices=choices, **common)
    if kind == "json":
        return JSONTextField(**common)
    if kind == "secret":
        return SecretField(**{**common, "initial": None})
    return forms.CharField(**common)


class SealedHiddenInput(forms.HiddenInput):
    """Carries a typed secret to the next step of a form encrypted, never in clear."""

    def format_value(self, value):
        if value in (None, ""):
            return ""
        return SecretField.SEALED_PREFIX + secrets.carried(str(value))


class SecretField(forms.CharField):
    """Typed in a password box that is never filled in again; a hidden copy is sealed (SealedHiddenInput)."""

    SEALED_PREFIX = "sealed:"
    hidden_widget = SealedHiddenInput

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("widget", forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))
        super().__init__(strip=False, **kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        if isinstance(value, str) and value.startswith(self.SEALED_PREFIX):
            try:
                return secrets.carried_back(value[len(self.SEALED_PREFIX):])
            except secrets.SecretError:
                raise forms.ValidationError("Type the secret again (it could not be read back).") from None
        return value


def pattern_validator(pattern: str):
    """The Run form checks a declared pattern as the run will (``jobs.params.check_pattern``)."""

    def validate(value) -> None:
        try:
            params.check_pattern(pattern, value)
        except params.ParameterError as exc:
            raise forms.ValidationError(str(exc), code="pattern") from None

    return validate


class JSONTextField(forms.JSONField):
    """JSON typed in a form; text nested too deeply for Python's parser, or text no database stores
    (``"\\u0000"``, ``"\\ud800"``), is a field error, not a crash."""

    def to_python(self, value):
        try:
            converted = super().to_python(value)
        except RecursionError:
            raise forms.ValidationError("Enter valid JSON (it is nested too deeply).", code="invalid") from None
        problem = value_problem(converted)
        if problem is not None:
            where, rule = problem
            inside = "".join(f"[{step}]" if isinstance(step, int) else f".{storable(step)}" for step in where)
            raise forms.ValidationError(f"{inside.lstrip('.') or 'The value'}: {rule}", code="invalid")
        return converted

    def bound_data(self, data, initial):
        try:
            bound = super().bound_data(data, initial)
        except RecursionError:  # the form is shown again with the text as typed
            return InvalidJSONInput(data)
        if not isinstance(bound, InvalidJSONInput) and value_problem(bound) is not None:
            return InvalidJSONInput(data)  # as typed (escapes), not the text no page can encode
        return bound


class RunParametersForm(forms.Form):
    """One typed field per run-time parameter of a job."""

    def __init__(self, specs: list[dict], *args, confirm_identifier: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.param_names = [spec["name"] for spec in specs]
        for spec in specs:
            self.fields[spec["name"]] = field_for(spec)
        if confirm_identifier:
            self.fields["confirm"] = forms.CharField(
                label="Type the job's identifier to confirm", required=True,
                help_text=f"Type {confirm_identifier} to run it.",
            )

    def values(self) -> dict:
        cleaned = getattr(self, "cleaned_data", {})
        return {name: cleaned[name] for name in self.param_names if cleaned.get(name) not in (None, "")}

    def shown_values(self) -> dict:
        """``values()`` as a page may show them: secrets masked."""
        return {name: secrets.MASK if isinstance(self.fields[name], SecretField) else value
                for name, value in self.values().items()}


class RunLaterForm(forms.Form):
    """Run's "later at…" (a planned run, ``results.runat``) and the confirmation a maintenance window asks for."""

    run_at = forms.DateTimeField(
        required=False, label="Later at…", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        help_text="Empty: run now. A time (in the site's time zone) plans the run; it can be cancelled until then.",
    )
    window_ok = forms.BooleanField(required=False, label="Run anyway, inside the maintenance window")

    def __init__(self, job, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.job = job

    def checked_run_at(self):
        """The planned time (None: now); ValidationError naming ``run_at`` or ``window_ok`` when a window is in the way.
        """
        if not self.is_valid():
            raise ValidationError(self.errors.as_data())
        run_at = self.cleaned_data.get("run_at")
        if run_at is not None:
            warning = maintenance.run_warning(self.job.domain_id, run_at)
            if warning:
                raise ValidationError({"run_at": [f"that time is {warning}: the planned run would not fire there; "
                                                  "choose another time"]})
            return run_at
        warning = maintenance.run_warning(self.job.domain_id)
        if warning and not self.cleaned_data.get("window_ok"):
            raise ValidationError({"window_ok": [f"Now is {warning}: tick this box to run anyway."]})
        return None


class TimesWidget(forms.MultiWidget):
    """A row of time pickers; empty ones are ignored."""

    template_name = "admin/jobs/times_widget.html"

    def __init__(self, slots: int = 6) -> None:
        super().__init__([forms.TimeInput(attrs={"type": "time"}, format="%H:%M") for _ in range(slots)])

    def decompress(self, value):
        values = list(value or [])
        return values + [None] * (len(self.widgets) - len(values))


class TimesField(forms.MultiValueField):
    """Times of day as a sorted list of "HH:MM"."""

    def __init__(self, slots: int = 6, **kwargs) -> None:
        fields = [forms.TimeField(required=False, input_formats=["%H:%M", "%H:%M:%S"]) for _ in range(slots)]
        kwargs.setdefault("required", False)
        super().__init__(fields, require_all_fields=False, widget=TimesWidget(slots), **kwargs)

    def compress(self, data_list):
        return sorted({t.strftime("%H:%M") for t in data_list if t is not None})


def _time_zone_choices():
    import zoneinfo

    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class ScheduleForm(forms.ModelForm):
    weekdays = forms.TypedMultipleChoiceField(
        choices=[(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")],
        coerce=int, required=False, widget=forms.CheckboxSelectMultiple(attrs={"class": "weekday-picker"}),
        label="Days of the week",
    )
    times = TimesField(label="Times of day", help_text="Calendar: one or more times, with the days above.")
    timezone = forms.ChoiceField(choices=_time_zone_choices)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # An untouched Scheduling section must post back exactly its initial values (and so be skipped).
        self.initial.setdefault("timezone", self.instance.timezone or settings.TIME_ZONE)
        self.initial.setdefault("weekdays", list(self.instance.weekdays or []))
        self.initial.setdefault("times", list(self.instance.times or []))

    class Meta:
        from .models import Schedule

        model = Schedule
        fields = ["name", "kind", "every", "every_unit", "weekdays", "times", "cron", "timezone", "starts_at",
                  "ends_at", "catch_up", "parameters"]
        help_texts = {"cron": "Calendar, instead of days and times: five fields, e.g. 0 18 * * 5."}


class ImportJobsForm(forms.Form):
    file = forms.FileField(help_text="A YAML job definition file, as export_jobs writes.")
    skip_existing = forms.BooleanField(required=False, help_text="Leave the jobs that exist as they are.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > 5 * 1024 * 1024:
            raise forms.ValidationError("The file is larger than 5 MB.")
        try:
            self._text = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None
        return upload

    def text(self) -> str:
        return self._text
