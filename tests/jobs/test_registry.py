"""The action registry (jobs/registry.py) and Action.objects.sync_with_registry."""
from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Literal, Optional

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs import registry
from jobs.models import Action, Job, JobLine
from jobs.registry import action


@pytest.fixture
def clean_registry(monkeypatch):
    """A copy of the registry that each test may change freely."""
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    return registry._registry


def params_of(name: str) -> list[dict]:
    return registry.get(name).parameters


# --- the decorator ------------------------------------------------------------------------------------------------


def test_decorator_registers_and_returns_the_function_unchanged(clean_registry):
    def close_orders(ctx, older_than_days: int = 30) -> str:
        """Close old orders.

        Only the open ones.
        """
        return "done"

    assert action("billing.close_orders")(close_orders) is close_orders
    spec = registry.get("billing.close_orders")
    assert spec.func is close_orders
    assert spec.label == "Close orders"
    assert spec.description == "Close old orders.\n\nOnly the open ones."
    assert spec.module == "billing"
    assert (spec.idempotent, spec.destructive, spec.external, spec.dangerous, spec.supports_cancel) == (
        True, False, False, False, False)
    assert "billing.close_orders" in registry.all_actions()


def test_decorator_options_are_kept(clean_registry):
    @action("billing.purge", label="Purge everything", description="Gone for good", module="accounts",
            help={"days": "How old"}, idempotent=False, destructive=True, external=True, dangerous=True,
            supports_cancel=True)
    def purge(ctx, days: int = 1) -> None:
        """Not used as description."""

    spec = registry.get("billing.purge")
    assert (spec.label, spec.description, spec.module) == ("Purge everything", "Gone for good", "accounts")
    assert (spec.idempotent, spec.destructive, spec.external, spec.dangerous, spec.supports_cancel) == (
        False, True, True, True, True)
    assert spec.parameter("days") == {"name": "days", "type": "int", "required": False, "default": 1,
                                      "help": "How old"}
    assert spec.parameter("missing") is None


@pytest.mark.parametrize(("plan", "message"), [
    ({"type": "calendar", "cron": "61 * * * *"}, "schedule of 'billing.nightly': cron: '61 * * * *' is not a valid"),
    ({"type": "interval", "every": 0}, "schedule of 'billing.nightly': every: must be a whole number of seconds"),
    ({"type": "weekly"}, "schedule of 'billing.nightly': type: must be interval or calendar"),
])
def test_a_declared_plan_that_cannot_fire_is_refused_at_registration(clean_registry, plan, message):
    with pytest.raises(ValueError, match=message.replace("*", r"\*")):
        @action("billing.nightly", schedule=plan)
        def nightly(ctx) -> None:
            pass
    assert registry.get("billing.nightly") is None


@pytest.mark.parametrize("name", ["close_orders", "Billing.close", "billing.", ".close", "billing.Close",
                                  "billing..close", "1billing.close", "billing.close-orders", ""])
def test_decorator_rejects_names_that_are_not_dotted_lowercase(name, clean_registry):
    with pytest.raises(ValueError, match="dotted lowercase"):
        action(name)


def test_a_second_function_under_the_same_name_is_refused(clean_registry):
    @action("testing.dup")
    def first(ctx) -> None:
        pass

    def second(ctx) -> None:
        pass

    with pytest.raises(ValueError, match="registered twice"):
        action("testing.dup")(second)
    assert registry.get("testing.dup").func is first


def test_registering_the_same_function_again_is_allowed(clean_registry):
    def again(ctx) -> None:
        pass

    action("testing.again")(again)
    action("testing.again", label="Relabelled")(again)
    assert registry.get("testing.again").label == "Relabelled"


def test_an_action_must_take_the_context(clean_registry):
    def no_context() -> None:
        pass

    with pytest.raises(TypeError, match="run context"):
        action("testing.no_context")(no_context)
    assert registry.get("testing.no_context") is None


def test_built_in_and_test_actions_are_registered():
    names = registry.all_actions()
    assert {"core.shell", "core.sleep", "testing.echo", "testing.typed"} <= set(names)
    assert registry.get("core.shell").parameter("command") == {
        "name": "command", "type": "str", "required": True,
        "help": "Run by /bin/sh in its own process group; each output line goes to the log. "
                'The run\'s variables are environment variables, e.g. "$JOBS_TODAY", "$JOBS_PARAM_WHO"; '
                "${...} is refused here (the shell would read the value as code)."}
    assert registry.get("core.sleep").supports_cancel is True


def test_all_actions_is_a_copy(clean_registry):
    registry.all_actions().clear()
    assert registry.get("core.shell") is not None


# --- signature parsing --------------------------------------------------------------------------------------------


def test_signature_types_defaults_and_required_marks(clean_registry):
    @action("testing.sig")
    def sig(ctx, name: str, count: int, ratio: float = 0.5, amount: Decimal = Decimal("1.5"), flag: bool = True,
            day: dt.date = dt.date(2026, 1, 2), at: dt.datetime | None = None, data: dict | None = None,
            items: list[str] | None = None, mode: Literal["fast", "slow"] = "fast", untyped=3,
            *args, limit: Optional[int] = None, **kwargs) -> None:  # noqa: UP045  (the old spelling too)
        pass

    assert params_of("testing.sig") == [
        {"name": "name", "type": "str", "required": True},
        {"name": "count", "type": "int", "required": True},
        {"name": "ratio", "type": "float", "required": False, "default": 0.5},
        {"name": "amount", "type": "float", "required": False, "default": 1.5},
        {"name": "flag", "type": "bool", "required": False, "default": True},
        {"name": "day", "type": "date", "required": False, "default": "2026-01-02"},
        {"name": "at", "type": "datetime", "required": False, "default": None},
        {"name": "data", "type": "json", "required": False, "default": None},
        {"name": "items", "type": "json", "required": False, "default": None},
        {"name": "mode", "type": "choice", "required": False, "choices": ["fast", "slow"], "default": "fast"},
        {"name": "untyped", "type": "str", "required": False, "default": 3},
        {"name": "limit", "type": "int", "required": False, "default": None},
    ]


def test_an_optional_annotation_without_default_is_not_required(clean_registry):
    @action("testing.opt")
    def opt(ctx, when: dt.date | None) -> None:
        pass

    assert params_of("testing.opt") == [{"name": "when", "type": "date", "required": False}]


def test_the_context_argument_is_not_a_parameter(clean_registry):
    @action("testing.only_ctx")
    def only_ctx(ctx: dict) -> None:
        pass

    assert params_of("testing.only_ctx") == []


# --- sync_with_registry -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sync_creates_one_row_per_registered_action():
    Action.objects.all().delete()
    Action.objects.sync_with_registry()
    assert set(Action.objects.values_list("name", flat=True)) == set(registry.all_actions())
    row = Action.objects.get(name="core.shell")
    assert (row.label, row.module, row.available, row.dangerous, row.idempotent, row.supports_cancel) == (
        "Shell command", "core", True, True, False, True)
    assert row.parameters == registry.get("core.shell").parameters


@pytest.mark.django_db
def test_sync_adds_a_new_action(clean_registry):
    Action.objects.sync_with_registry()

    @action("testing.brand_new", label="Brand new")
    def brand_new(ctx, size: int = 2) -> None:
        """Fresh."""

    Action.objects.sync_with_registry()
    row = Action.objects.get(name="testing.brand_new")
    assert (row.label, row.description, row.module, row.available) == ("Brand new", "Fresh.", "testing", True)
    assert row.parameters == [{"name": "size", "type": "int", "required": False, "default": 2}]


@pytest.mark.django_db
def test_sync_updates_a_changed_action_in_place(clean_registry):
    Action.objects.sync_with_registry()
    before = Action.objects.get(name="testing.echo")

    # The code of the action changed: new label, description, flag and signature.
    clean_registry["testing.echo"] = dataclasses.replace(
        clean_registry["testing.echo"], label="Louder echo", description="Echo, changed.", destructive=True,
        parameters=[{"name": "text", "type": "str", "required": True},
                    {"name": "times", "type": "int", "required": False, "default": 3}])

    Action.objects.sync_with_registry()
    after = Action.objects.get(name="testing.echo")
    assert after.pk == before.pk
    assert (after.label, after.description, after.destructive) == ("Louder echo", "Echo, changed.", True)
    assert after.parameters == [{"name": "text", "type": "str", "required": True},
                                {"name": "times", "type": "int", "required": False, "default": 3}]


@pytest.mark.django_db
def test_sync_marks_a_vanished_action_unavailable_and_never_deletes_it(clean_registry):
    Action.objects.sync_with_registry()
    row = Action.objects.get(name="testing.echo")
    job = Job.objects.create(identifier="uses-echo", name="Uses echo")
    JobLine.objects.create(job=job, line_no=10, action=row, parameters={})
    del clean_registry["testing.echo"]

    Action.objects.sync_with_registry()
    row.refresh_from_db()
    assert row.available is False
    assert str(row) == "testing.echo (unavailable)"
    assert job.lines.get().action_id == row.pk
    assert "testing.echo" not in Action.objects.available().values_list("name", flat=True)


@pytest.mark.django_db
def test_sync_marks_a_vanished_action_unavailable_even_without_lines(clean_registry):
    Action.objects.sync_with_registry()
    del clean_registry["testing.fail"]
    Action.objects.sync_with_registry()
    assert Action.objects.filter(name="testing.fail", available=False).count() == 1


@pytest.mark.django_db
def test_sync_makes_a_returning_action_available_again(clean_registry):
    Action.objects.sync_with_registry()
    spec = clean_registry.pop("testing.warn")
    Action.objects.sync_with_registry()
    assert Action.objects.get(name="testing.warn").available is False
    clean_registry["testing.warn"] = spec
    Action.objects.sync_with_registry()
    assert Action.objects.get(name="testing.warn").available is True


@pytest.mark.django_db
def test_sync_writes_nothing_when_nothing_changed():
    Action.objects.sync_with_registry()
    with CaptureQueriesContext(connection) as queries:
        Action.objects.sync_with_registry()
    writes = [q["sql"] for q in queries.captured_queries
              if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert writes == []
    assert Action.objects.count() == len(registry.all_actions())


@pytest.mark.django_db
def test_sync_actions_command_lists_rows_with_availability(clean_registry):
    from io import StringIO

    from django.core.management import call_command

    Action.objects.sync_with_registry()
    del clean_registry["testing.touch"]
    out = StringIO()
    call_command("sync_actions", stdout=out)
    lines = out.getvalue().splitlines()
    assert "testing.touch\tunavailable" in lines
    assert "core.shell\tavailable" in lines


# --- required permissions -----------------------------------------------------------------------------------------


def test_an_action_declares_the_permissions_its_lines_need(clean_registry):
    @action("billing.post_invoices", permissions=["billing.post_invoice", "auth.view_user"])
    def post_invoices(ctx) -> None:
        """Posts."""

    assert registry.get("billing.post_invoices").permissions == ("billing.post_invoice", "auth.view_user")
    assert registry.get("testing.echo").permissions == ()


@pytest.mark.parametrize("permissions", ["billing.post_invoice", ["post_invoice"], ["billing.post invoice"], [3]])
def test_permissions_must_be_a_list_of_app_label_codename(permissions, clean_registry):
    with pytest.raises(ValueError, match=r"app_label\.codename"):
        action("billing.post_invoices", permissions=permissions)


@pytest.mark.django_db
def test_the_permission_refusal_names_the_permission_and_the_user(django_user_model):
    spec = registry.get("testing.guarded")
    ann = django_user_model.objects.create_user("ann")
    assert spec.permission_refusal(ann) == "testing.guarded needs the permission jobs.view_job, which ann lacks"
    assert spec.permission_refusal(None) == "testing.guarded needs the permission jobs.view_job and the run has no user"
    root = django_user_model.objects.create_superuser("root")
    assert spec.permission_refusal(root) is None
    root.is_active = False
    assert "an inactive user has no permissions" in spec.permission_refusal(root)
    assert registry.get("testing.echo").permission_refusal(None) is None


@pytest.mark.django_db
def test_sync_stores_the_required_permissions_and_the_action_page_shows_them(client, admin_user):
    Action.objects.sync_with_registry()
    row = Action.objects.get(name="testing.guarded")
    assert row.permissions == ["jobs.view_job"]
    client.force_login(admin_user)
    page = client.get(f"/admin/jobs/action/{row.pk}/change/").content.decode()
    assert "Required permissions" in page and "jobs.view_job" in page
