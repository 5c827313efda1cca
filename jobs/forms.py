"""Forms built from parameter specs (the Run dialog), and the job form's editors that keep people away from
raw JSON: the run-time parameter table and the e-mail report."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
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


# --- The job's run-time parameters as a table (``Job.params``) ------------------------------------------------

PARAM_KEYS = ("name", "type", "default", "required", "choices", "help", "pattern", "label")
CHOICE_SEPARATOR = ","


def default_text(spec: dict) -> str:
    """A declared default as the table's text box shows it (``typed_default`` reads it back)."""
    default = spec.get("default")
    if default is None:
        return ""
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, (dict, list)):
        return json.dumps(default)
    return str(default)


def typed_default(kind: str, text: str) -> Any:
    """The default typed in the table, stored as the JSON a declaration holds (7, not "7"); ParameterError
    states the rule it breaks."""
    if text == "":
        return None
    if kind in ("int", "float", "bool"):
        return params.coerce({"type": kind}, text)
    if kind == "json":
        return params.coerce({"type": "json"}, text)
    return text


def fits_the_table(spec: Any) -> bool:
    """True when the table shows ``spec`` as it is: saved again unchanged, it stores the same declaration.

    Anything else (choices that are not text or hold a comma, a default of another JSON type than its
    parameter's) opens the declaration as JSON (Advanced).
    """
    if not isinstance(spec, dict) or set(spec) - set(PARAM_KEYS) or not isinstance(spec.get("name"), str):
        return False
    choices = spec.get("choices")
    if choices is not None and not (isinstance(choices, list) and all(
            isinstance(c, str) and CHOICE_SEPARATOR not in c and c == c.strip() and c for c in choices)):
        return False
    default, kind = spec.get("default"), spec.get("type", "str")
    if default is None:
        return True
    try:
        return typed_default(kind, default_text(spec)) == default and type(
            typed_default(kind, default_text(spec))) is type(default)
    except params.ParameterError:
        return False


class ParamSpecForm(forms.Form):
    """One row of the table: one run-time parameter; each error names its cell."""

    name = forms.CharField(max_length=100, required=True,
                           widget=forms.TextInput(attrs={"size": 10, "autocomplete": "off"}))
    type = forms.ChoiceField(choices=[(kind, kind) for kind in params.TYPES])
    default = forms.CharField(required=False, strip=False, widget=forms.TextInput(attrs={"size": 8}))
    required = forms.BooleanField(required=False)
    choices = forms.CharField(required=False, widget=forms.TextInput(attrs={"size": 10, "placeholder": "a, b, c"}),
                              help_text="For a choice: the values, separated by commas.")
    help = forms.CharField(required=False, widget=forms.TextInput(attrs={"size": 16}))
    pattern = forms.CharField(required=False, strip=False, widget=forms.TextInput(attrs={"size": 8}))
    label = forms.CharField(required=False, widget=forms.HiddenInput)

    TEXT_FIELDS = ("name", "default", "choices", "help", "pattern", "label")

    def has_changed(self) -> bool:
        """A row left blank is no parameter (a new row the person did not fill in)."""
        return any((self.data.get(self.add_prefix(name)) or "").strip() for name in self.TEXT_FIELDS)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name.isidentifier() or not name.isascii():
            raise forms.ValidationError("letters, digits and _ only, not starting with a digit (shell commands "
                                        f"read it as $JOBS_PARAM_{name.upper()})")
        return name

    def clean_choices(self) -> list[str]:
        return [c.strip() for c in self.cleaned_data["choices"].split(CHOICE_SEPARATOR) if c.strip()]

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("type")
        if kind is None:
            return cleaned
        if kind == "choice" and "choices" in cleaned and not cleaned["choices"]:
            self.add_error("choices", "a choice parameter needs its values, separated by commas")
        if kind != "choice" and cleaned.get("choices"):
            self.add_error("choices", "only a choice parameter has choices")
        self._clean_pattern(kind, cleaned.get("pattern") or "")
        if "default" in cleaned:
            self._clean_default(kind, cleaned)
        return cleaned

    def _clean_pattern(self, kind: str, pattern: str) -> None:
        if not pattern:
            return
        if kind not in params.PATTERN_TYPES:
            self.add_error("pattern", f"a pattern applies to {' and '.join(params.PATTERN_TYPES)} parameters only")
            return
        try:
            params.compiled_pattern(pattern)
        except params.ParameterError as exc:
            self.add_error("pattern", str(exc))

    def _clean_default(self, kind: str, cleaned: dict) -> None:
        text = cleaned["default"]
        if kind == "secret" and text:
            self.add_error("default", "a secret parameter has no default (it would be stored in clear)")
            return
        try:
            default = typed_default(kind, text)
            if default is not None:  # the rules a run applies to a value (choices, pattern) apply to it too
                params.coerce(self.spec_of(cleaned, with_default=False), default)
        except params.ParameterError as exc:
            if not self.has_error("pattern") and not self.has_error("choices"):
                self.add_error("default", str(exc))
            return
        cleaned["typed_default"] = default

    @staticmethod
    def spec_of(cleaned: dict, *, with_default: bool = True) -> dict:
        spec = {"name": cleaned.get("name", ""), "type": cleaned["type"], "required": bool(cleaned.get("required"))}
        if cleaned.get("choices"):
            spec["choices"] = cleaned["choices"]
        for key in ("pattern", "help", "label"):
            if cleaned.get(key):
                spec[key] = cleaned[key]
        if with_default and cleaned.get("typed_default") is not None:
            spec["default"] = cleaned["typed_default"]
        return spec

    def spec(self) -> dict:
        return self.spec_of(self.cleaned_data)


class BaseParamSpecFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        seen: dict[str, str] = {}
        for form in self.filled_forms():
            name = form.cleaned_data.get("name")
            if not name:
                continue
            twin = seen.get(name.upper())
            if twin == name:
                form.add_error("name", "declared twice")
            elif twin is not None:
                form.add_error("name", f"differs from '{twin}' only in case; both would reach shell commands as "
                                       f"$JOBS_PARAM_{name.upper()}")
            seen.setdefault(name.upper(), name)

    def filled_forms(self) -> list[ParamSpecForm]:
        return [form for form in self.forms if form.has_changed()]

    def specs(self) -> list[dict]:
        return [form.spec() for form in self.filled_forms()]

    def problems(self) -> list[str]:
        """Every error, naming its row and cell: "Row 2 (days), default: must be a whole number"."""
        problems = []
        for number, form in enumerate(self.forms, start=1):
            named = (form.data.get(form.add_prefix("name")) or "").strip()
            row = f"Row {number}" + (f" ({named})" if named and named.isprintable() and len(named) <= 100 else "")
            for field, errors in form.errors.items():
                label = "the row" if field == forms.forms.NON_FIELD_ERRORS else field
                problems += [f"{row}, {label}: {error}" for error in errors]
        return problems + list(self.non_form_errors())


ParamSpecFormSet = forms.formset_factory(ParamSpecForm, formset=BaseParamSpecFormSet, extra=0, max_num=200,
                                         validate_max=True)


@dataclass
class ParamsInput:
    """What the page posted for the parameters: the table's rows, or the Advanced JSON text."""

    mode: str  # "table" or "json"
    json_text: str | None
    data: Any  # the posted data (the table's inputs)
    prefix: str  # the field's name: the table's formset prefix


class ParamTableWidget(forms.Widget):
    """The declaration as a table of rows (a formset, prefix = the field's name), with the raw JSON as
    "Advanced"; a hidden ``NAME-mode`` says which of the two the person edited. A post with only ``NAME``
    (scripts, older pages) is JSON."""

    template_name = "admin/jobs/widgets/param_table.html"

    def value_from_datadict(self, data, files, name) -> ParamsInput:
        mode = data.get(f"{name}-mode")
        if mode not in ("table", "json"):
            mode = "json" if name in data else "table"
        return ParamsInput(mode, data.get(name), data, name)

    def value_omitted_from_data(self, data, files, name) -> bool:
        return name not in data and f"{name}-mode" not in data

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        if isinstance(value, ParamsInput):  # shown again after an error: as posted
            json_text = value.json_text or ""
            mode = value.mode
            # JSON typed as Advanced stays there as typed (it may hold text no page can show, escaped).
            formset = ParamSpecFormSet(value.data if mode == "table" else None, prefix=name)
            if mode == "table":
                formset.is_valid()
        else:
            specs = self._parsed(value)
            json_text = json.dumps(specs, indent=2, ensure_ascii=False) if specs else "[]"
            fits = isinstance(specs, list) and all(fits_the_table(spec) for spec in specs)
            mode = "table" if fits else "json"
            formset = ParamSpecFormSet(prefix=name, initial=self._rows(specs) if fits else None)
        context["widget"].update({"formset": formset, "mode": mode, "json_text": json_text,
                                  "empty_row": formset.empty_form})
        return context

    @staticmethod
    def _parsed(value) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return None
        return value

    @staticmethod
    def _rows(specs) -> list[dict]:
        if not isinstance(specs, list):
            return []
        return [{"name": spec.get("name", ""), "type": spec.get("type", "str"), "default": default_text(spec),
                 "required": bool(spec.get("required")), "choices": ", ".join(map(str, spec.get("choices") or [])),
                 "help": spec.get("help", ""), "pattern": spec.get("pattern", ""), "label": spec.get("label", "")}
                for spec in specs if isinstance(spec, dict)]


class ParamSpecsField(forms.Field):
    """``Job.params`` typed in the table (or as JSON, Advanced); ``Job.clean`` still checks the result."""

    widget = ParamTableWidget

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, (list, dict)):
            return json.dumps(value)  # as Django's JSONField does: what a page (or a test) posts back
        return value

    def bound_data(self, data, initial):
        return data

    def to_python(self, value):
        if not isinstance(value, ParamsInput):
            return value
        if value.mode == "json":
            parsed = JSONTextField(required=False).clean(value.json_text)
            return [] if parsed is None else parsed
        formset = ParamSpecFormSet(value.data, prefix=value.prefix)
        if not formset.is_valid():
            problems = formset.problems()
            raise forms.ValidationError(problems or ["The parameter table was not sent whole: reload the page."])
        return formset.specs()

    def has_changed(self, initial, data) -> bool:
        try:
            return self.to_python(data) != (initial or [])
        except forms.ValidationError:
            return True


# --- The e-mail report (``Job.report``): Send report + recipients -----------------------------------------

REPORT_WHEN = [("never", "Never"), ("failure", "When it fails (error or killed)"),
               ("warning", "When it warns or fails"), ("always", "After every run")]


class ReportWidget(forms.MultiWidget):
    template_name = "admin/jobs/widgets/report.html"

    def __init__(self) -> None:
        super().__init__([
            forms.Select(choices=REPORT_WHEN, attrs={"class": "report-when"}),
            forms.Textarea(attrs={"rows": 3, "cols": 40, "class": "report-recipients",
                                  "placeholder": "ops@example.com\nteam@example.com"}),
        ])

    def decompress(self, value):
        report = value if isinstance(value, dict) else {}
        recipients = report.get("recipients") or []
        # Without recipients no mail goes out, whatever "when" says; without "when": results.reports' default.
        when = (report.get("when") or "failure") if recipients else "never"
        return [when, "\n".join(map(str, recipients)) if isinstance(recipients, list) else str(recipients)]


class ReportField(forms.MultiValueField):
    """Who gets a mail about a run, and after which runs; stored as ``{"when": ..., "recipients": [...]}``
    (``results.reports``), nothing at all when no mail is ever sent."""

    widget = ReportWidget

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Recipients: one e-mail address a line (or separated by commas).")
        super().__init__([forms.ChoiceField(choices=REPORT_WHEN, required=False),
                          forms.CharField(required=False)], require_all_fields=False, **kwargs)

    def compress(self, data_list):
        when, text = [*data_list, "", ""][:2]
        when = when or "never"
        recipients = [address.strip() for address in (text or "").replace(",", "\n").splitlines() if address.strip()]
        bad = []
        for address in recipients:
            try:
                validate_email(address)
            except forms.ValidationError:
                bad.append(address)
        if bad:
            raise forms.ValidationError(
                "Recipients: " + ", ".join(f"'{storable(a)}'" for a in bad) + (" is not a valid e-mail address"
                if len(bad) == 1 else " are not valid e-mail addresses"), code="invalid")
        if when != "never" and not recipients:
            raise forms.ValidationError("Recipients: give at least one e-mail address, or choose Never.",
                                        code="required")
        if when == "never" and not recipients:
            return None
        return {"when": when, "recipients": recipients}
