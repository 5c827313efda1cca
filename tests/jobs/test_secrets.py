"""Secrets in definitions: encryption at rest, the store's admin pages, references in lines, export and import."""
from __future__ import annotations

import pytest
import yaml
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.urls import reverse

from jobs import secrets
from jobs.definitions import DefinitionError, export_jobs, import_jobs
from jobs.models import Action, DomainMembership, Job, JobLine, Secret
from jobs.params import validate_param_specs
from tests.helpers import make_job, make_member
from tests.jobs.test_admin_job_form import line_errors as form_line_errors
from tests.jobs.test_admin_job_form import post_add

pytestmark = pytest.mark.django_db

VALUE = "hunter2-very-secret-value"
ADMIN, OPERATOR, VIEWER = DomainMembership.ADMIN, DomainMembership.OPERATOR, DomainMembership.VIEWER


def store(name: str, domain, value: str = VALUE) -> Secret:
    secret = Secret(name=name, domain=domain)
    secret.set_value(value)
    secret.save()
    return secret


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def line(job: Job, action: str, parameters: dict) -> JobLine:
    Action.objects.sync_with_registry()
    return JobLine(job=job, line_no=10, action=Action.objects.get(name=action), parameters=parameters)


def line_errors(job: Job, action: str, parameters: dict) -> list[str]:
    try:
        line(job, action, parameters).full_clean(exclude=["job"])
    except ValidationError as exc:
        return exc.message_dict.get("parameters", []) + exc.message_dict.get("__all__", [])
    return []


# --- encryption ------------------------------------------------------------------------------------------

def test_a_secret_is_stored_encrypted_the_raw_row_holds_no_clear_text(acme):
    secret = store("api_token", acme)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM jobs_secret WHERE id = %s", [secret.pk])
        row = " ".join(map(str, cursor.fetchone()))
    assert VALUE not in row
    assert Secret.objects.get(pk=secret.pk).reveal() == VALUE


def test_the_first_key_encrypts_and_every_key_decrypts(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.JOBS_SECRET_KEYS = [old]
    token = secrets.encrypt("x")
    settings.JOBS_SECRET_KEYS = [new, old]
    assert secrets.decrypt(token) == "x"
    rotated = secrets.rotate(token)
    settings.JOBS_SECRET_KEYS = [new]
    assert secrets.decrypt(rotated) == "x"
    with pytest.raises(secrets.SecretError, match="JOBS_SECRET_KEYS"):
        secrets.decrypt(token)


def test_without_keys_the_key_comes_from_secret_key(settings):
    settings.JOBS_SECRET_KEYS = []
    token = secrets.encrypt("x")
    assert Fernet(secrets.derived_key(settings.SECRET_KEY)).decrypt(token.encode()) == b"x"
    settings.SECRET_KEY = "another-secret-key"
    with pytest.raises(secrets.SecretError):
        secrets.decrypt(token)


def test_the_masker_masks_every_occurrence_longest_first():
    masker = secrets.Masker(["abc", "abcdef", "", None])
    assert masker.text("x abcdef y abc") == f"x {secrets.MASK} y {secrets.MASK}"
    assert masker.value({"k": ["abc", 3]}) == {"k": [secrets.MASK, 3]}
    assert not secrets.Masker() and secrets.Masker().text("abc") == "abc"
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBg\n-----END KEY-----"
    assert secrets.Masker([key]).text("line MIIEvQIBADANBg") == f"line {secrets.MASK}"  # logged line by line


# --- the store's admin pages -------------------------------------------------------------------------------

@pytest.mark.parametrize("role", [VIEWER, OPERATOR, ADMIN])
def test_no_member_ever_sees_a_value_in_the_secret_pages(acme, role):
    secret = store("api_token", acme)
    client = browser(make_member("ann", (acme, role), staff=True))
    pages = [reverse("admin:jobs_secret_changelist"), reverse("admin:jobs_secret_change", args=[secret.pk]),
             reverse("admin:jobs_secret_history", args=[secret.pk])]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert VALUE not in html and secret.token not in html, page
        assert "api_token" in html  # the name is shown


def test_the_value_is_write_only_empty_keeps_it_and_a_new_one_replaces_it(acme):
    secret = store("api_token", acme)
    client = browser(make_member("ann", (acme, ADMIN), staff=True))
    url = reverse("admin:jobs_secret_change", args=[secret.pk])
    html = client.get(url).content.decode()
    assert 'type="password"' in html and 'name="value"' in html and VALUE not in html
    body = {"name": "api_token", "domain": acme.pk, "description": "for the API", "value": ""}
    assert client.post(url, body).status_code == 302
    assert Secret.objects.get(pk=secret.pk).reveal() == VALUE
    assert client.post(url, {**body, "value": "new-value"}).status_code == 302
    changed = Secret.objects.get(pk=secret.pk)
    assert changed.reveal() == "new-value" and changed.updated_by.username == "ann"


def test_a_new_secret_needs_a_value_and_a_domain_admin_needs_their_domain(acme, globex):
    client = browser(make_member("ann", (acme, ADMIN), staff=True))
    add = reverse("admin:jobs_secret_add")
    response = client.post(add, {"name": "api_token", "domain": acme.pk, "value": ""})
    assert response.status_code == 200 and "A new secret needs a value." in response.content.decode()
    response = client.post(add, {"name": "api_token", "domain": globex.pk, "value": "v"})
    assert response.status_code == 200 and not Secret.objects.exists()  # another domain: not a valid choice
    response = client.post(add, {"name": "api_token", "domain": "", "value": "v"})
    assert response.status_code == 200 and not Secret.objects.exists()  # global: system administrators only
    assert client.post(add, {"name": "api_token", "domain": acme.pk, "value": "v"}).status_code == 302
    assert Secret.objects.get().domain == acme


def test_other_domains_secrets_and_global_ones_answer_404(acme, globex):
    theirs, global_one = store("their_token", globex), store("root_token", None)
    client = browser(make_member("ann", (acme, ADMIN), staff=True))
    for secret in (theirs, global_one):
        for name in ("jobs_secret_change", "jobs_secret_delete", "jobs_secret_history"):
            assert client.get(reverse(f"admin:{name}", args=[secret.pk])).status_code == 404
        response = client.post(reverse("admin:jobs_secret_change", args=[secret.pk]),
                               {"name": "stolen", "domain": acme.pk, "value": "x"})
        assert response.status_code == 404
    assert "their_token" not in client.get(reverse("admin:jobs_secret_changelist")).content.decode()


# --- references in lines -------------------------------------------------------------------------------

def test_a_line_may_use_its_domains_secret(acme):
    store("api_token", acme)
    job = make_job("acme-job", domain=acme)
    assert line_errors(job, "testing.login", {"user": "u", "password": "${secret.api_token}"}) == []
    assert line_errors(job, "core.http", {"url": "http://h/", "headers": {
        "Authorization": "Bearer ${secret.api_token}"}}) == []


def test_a_line_cannot_use_another_domains_secret_nor_a_global_one(acme, globex):
    store("their_token", globex)
    store("root_token", None)
    job = make_job("acme-job", domain=acme)
    assert line_errors(job, "testing.echo", {"text": "${secret.their_token}"}) == [
        "text: unknown secret their_token (not a secret of this job's domain)"]
    assert line_errors(job, "testing.echo", {"text": "${secret.root_token}"}) == [
        "text: unknown secret root_token (not a secret of this job's domain)"]
    assert line_errors(job, "testing.echo", {"text": "echo $JOBS_SECRET_THEIR_TOKEN"}) == [
        "text: unknown secret their_token (not a secret of this job's domain)"]


def test_a_global_job_uses_global_secrets_only(acme):
    store("acme_token", acme)
    store("root_token", None)
    job = make_job("global-job")
    assert line_errors(job, "testing.echo", {"text": "${secret.root_token}"}) == []
    assert line_errors(job, "testing.echo", {"text": "${secret.acme_token}"}) == [
        "text: unknown secret acme_token (not a global secret)"]


def test_a_credential_typed_into_a_line_is_refused(acme):
    store("api_token", acme)
    job = make_job("acme-job", domain=acme, params=[{"name": "pw", "type": "secret"}])
    assert line_errors(job, "testing.login", {"user": "u", "password": "hunter2"}) == [
        "password: a secret is never typed into a line: reference a stored secret, e.g. ${secret.api_token}, "
        "or a run-time parameter of type secret"]
    assert line_errors(job, "core.http", {"url": "http://h/", "headers": {"Authorization": "Bearer abc",
                                                                          "X-Api-Key": "k", "Accept": "a/b"}}) == [
        "headers: Authorization must reference a secret, e.g. ${secret.api_token} (a credential is never stored "
        "in a line)",
        "headers: X-Api-Key must reference a secret, e.g. ${secret.api_token} (a credential is never stored in a "
        "line)"]
    assert line_errors(job, "testing.login", {"user": "u", "password": "${param.pw}"}) == []
    assert line_errors(job, "testing.login", {"user": "u", "password": "${today}"}) != []


def test_a_secret_run_time_parameter_has_no_default():
    with pytest.raises(ValidationError, match="a secret parameter has no default"):
        validate_param_specs([{"name": "pw", "type": "secret", "default": "hunter2"}])
    assert validate_param_specs([{"name": "pw", "type": "secret", "required": True}])[0]["type"] == "secret"


def test_secret_run_time_values_are_sealed_and_a_sealed_value_is_accepted_again(acme):
    job = make_job("acme-job", domain=acme, params=[{"name": "pw", "type": "secret"}, {"name": "n", "type": "int"}])
    values = job.clean_run_parameters({"pw": VALUE, "n": "3"})
    assert secrets.is_sealed(values["pw"]) and VALUE not in str(values) and values["n"] == 3
    assert secrets.unseal(job.clean_run_parameters(values)["pw"]) == VALUE  # a retry
    with pytest.raises(ValidationError) as caught:
        job.clean_run_parameters({"pw": {"$secret": "forged"}})
    assert "JOBS_SECRET_KEYS" in caught.value.message_dict["pw"][0]


def test_a_stored_secrets_token_opens_nowhere_else(acme):
    """Sealed values, the Run form's hidden copies and the store have keys of their own (one key on the old code):
    a stored secret's token given as a sealed run value, or posted as the form's hidden copy, opens nothing."""
    token = store("api_token", acme).token
    job = make_job("acme-job", (10, "testing.echo", {"text": "hi"}), domain=acme,
                   params=[{"name": "pw", "type": "secret", "required": True}])
    with pytest.raises(ValidationError) as caught:
        job.clean_run_parameters({"pw": {"$secret": token}})
    assert "JOBS_SECRET_KEYS" in caught.value.message_dict["pw"][0]
    client = browser(make_member("ann", (acme, OPERATOR), staff=True))
    refused = client.post(reverse("admin:jobs_job_run", args=[job.pk]), {"step": "confirm", "pw": f"sealed:{token}"})
    assert refused.status_code == 200 and "Type the secret again" in refused.content.decode()
    form_copy = secrets.carried(VALUE)
    with pytest.raises(secrets.SecretError):
        secrets.unseal({"$secret": form_copy})
    with pytest.raises(secrets.SecretError):
        secrets.decrypt(secrets.seal(VALUE)["$secret"])


def test_the_worker_opens_only_the_secret_parameters():
    """Another parameter's value shaped like a sealed one (a JSON parameter) is data: never opened."""
    sealed = secrets.seal(VALUE)
    assert secrets.revealed_values({"pw": sealed, "cfg": sealed, "n": 3}, {"pw"}) == {
        "pw": VALUE, "cfg": sealed, "n": 3}


def test_values_sealed_with_the_stores_keys_are_sealed_again_by_the_migration(acme):
    import importlib

    from django.apps import apps

    from results.models import JobResult

    job = make_job("acme-job", domain=acme, params=[{"name": "pw", "type": "secret"}, {"name": "cfg", "type": "json"}])
    old = {"$secret": secrets.encrypt(VALUE)}  # how sealing worked before it had keys of its own
    result = JobResult.objects.create(job=job, parameters={"pw": old, "cfg": old})
    importlib.import_module("results.migrations.0009_reseal_run_parameters").reseal(apps, None)
    result.refresh_from_db()
    assert secrets.unseal(result.parameters["pw"]) == VALUE and result.parameters["cfg"] == old


# --- the job page, export and import -------------------------------------------------------------------

@pytest.mark.parametrize("role", [VIEWER, OPERATOR])
def test_the_job_page_and_the_export_show_references_never_values(acme, role):
    store("api_token", acme)
    job = make_job("acme-job", (10, "testing.login", {"user": "u", "password": "${secret.api_token}"}),
                   domain=acme, params=[{"name": "pw", "type": "secret"}])
    client = browser(make_member("ann", (acme, role), staff=True))
    html = client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    assert "${secret.api_token}" in html and VALUE not in html
    exported = client.post(reverse("admin:jobs_job_changelist"),
                           {"action": "export_yaml", "_selected_action": [job.pk]}).content.decode()
    assert VALUE not in exported
    document = yaml.safe_load(exported)["jobs"][0]
    assert document["lines"][0]["parameters"]["password"] == "${secret.api_token}"
    assert document["params"] == [{"name": "pw", "type": "secret"}]


def test_import_needs_the_secret_to_exist_in_the_jobs_domain(acme):
    store("api_token", acme)
    make_job("acme-job", (10, "testing.login", {"user": "u", "password": "${secret.api_token}"}), domain=acme)
    text = export_jobs(Job.objects.all())
    Job.objects.all().delete()
    Secret.objects.all().delete()
    with pytest.raises(DefinitionError, match=r"line 10: parameters: password: unknown secret api_token"):
        import_jobs(text)
    store("api_token", acme)
    assert import_jobs(text)["created"] == ["acme-job"]


# --- the Run dialog --------------------------------------------------------------------------------------

def test_the_run_dialog_never_writes_a_typed_secret_back_into_the_page(acme):
    from results.models import JobResult

    job = make_job("acme-job", (10, "testing.echo", {"text": "hi"}), domain=acme,
                   params=[{"name": "pw", "type": "secret", "required": True}])
    client = browser(make_member("ann", (acme, OPERATOR), staff=True))
    url = reverse("admin:jobs_job_run", args=[job.pk])
    assert 'type="password" name="pw"' in client.get(url).content.decode()
    step = client.post(url, {"pw": VALUE})
    html = step.content.decode()
    assert step.status_code == 200 and VALUE not in html
    assert f"<code>{secrets.MASK}</code>" in html  # "With these parameters"
    sealed = html.split('type="hidden" name="pw" value="')[1].split('"')[0]
    assert sealed.startswith("sealed:")  # carried to the next step encrypted
    response = client.post(url, {"step": "confirm", "pw": sealed})
    assert response.status_code == 302
    result = JobResult.objects.get()
    assert secrets.unseal(result.parameters["pw"]) == VALUE and VALUE not in str(result.parameters)
    refused = client.post(url, {"step": "confirm", "pw": "sealed:not-a-token"})
    assert refused.status_code == 200 and "Type the secret again" in refused.content.decode()


def test_a_credential_saved_in_clear_before_the_rule_is_exported_masked(acme):
    store("api_token", acme)
    job = make_job("acme-job", domain=acme)
    Action.objects.sync_with_registry()
    JobLine.objects.create(job=job, line_no=10, action=Action.objects.get(name="core.http"), parameters={
        "url": "http://h/", "headers": {"Authorization": "Bearer " + VALUE, "Cookie": "${secret.api_token}",
                                        "Accept": "text/plain"}})
    JobLine.objects.create(job=job, line_no=20, action=Action.objects.get(name="testing.login"),
                           parameters={"user": "u", "password": VALUE})
    exported = export_jobs(Job.objects.all())
    assert VALUE not in exported
    lines = yaml.safe_load(exported)["jobs"][0]["lines"]
    assert lines[0]["parameters"]["headers"] == {"Authorization": secrets.MASK, "Cookie": "${secret.api_token}",
                                                 "Accept": "text/plain"}
    assert lines[1]["parameters"] == {"user": "u", "password": secrets.MASK}
    with pytest.raises(DefinitionError, match="Authorization must reference a secret"):
        import_jobs(exported)  # a masked credential is refused, never stored as the mask


# --- the job form (what a domain administrator posts) ------------------------------------------------------

@pytest.mark.parametrize(("parameters", "message"), [
    ({"text": "${secret.their_token}"}, "text: unknown secret their_token (not a secret of this job's domain)"),
    ({"text": "${secret.root_token}"}, "text: unknown secret root_token (not a secret of this job's domain)"),
], ids=["other-domain", "global"])
def test_a_domain_admin_cannot_put_another_domains_or_a_global_secret_on_a_line(client, acme, globex, parameters,
                                                                                message):
    store("their_token", globex)
    store("root_token", None)
    Action.objects.sync_with_registry()
    response = post_add(client, make_member("ann", (acme, ADMIN), staff=True),
                        [{"line_no": 10, "action": "testing.echo", "parameters": parameters}], domain=acme.pk)
    assert response.status_code == 200
    assert form_line_errors(response) == [message]
    assert not Job.objects.filter(identifier="nightly").exists()
