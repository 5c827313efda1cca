"""Engine semantics, executed by a real Celery worker process on the configured broker."""
from __future__ import annotations

import pytest

from results.dispatch import publish, start_run
from results.models import JobLogEntry, JobResult, Status
from tests.helpers import make_job, wait_for_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.usefixtures("celery_worker")]


def line_rows(result: JobResult) -> list[tuple[int, str]]:
    return list(result.line_results.order_by("line_no").values_list("line_no", "status"))


def test_lines_run_in_line_no_order(tmp_path):
    trace = tmp_path / "trace.txt"
    job = make_job(
        "ordered",
        (30, "testing.touch", {"path": str(trace)}),
        (10, "testing.touch", {"path": str(trace)}),
        (20, "testing.touch", {"path": str(trace)}),
    )
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.SUCCESS
    assert [int(row.split(":")[1]) for row in trace.read_text().split()] == [10, 20, 30]
    assert line_rows(result) == [(10, "success"), (20, "success"), (30, "success")]
    assert result.started_at <= result.finished_at


def test_stop_on_error_skips_the_following_lines(tmp_path):
    trace = tmp_path / "trace.txt"
    job = make_job("stops", (10, "testing.fail", {}), (20, "testing.touch", {"path": str(trace)}),
                   stops_on_error=True)
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.ERROR
    assert "Line 10 failed" in result.message and "it went wrong" in result.message
    assert line_rows(result) == [(10, "error")]
    assert not trace.exists()


def test_without_stop_on_error_the_remaining_lines_run_and_the_run_is_error(tmp_path):
    trace = tmp_path / "trace.txt"
    job = make_job("keeps-going", (10, "testing.fail", {}), (20, "testing.touch", {"path": str(trace)}),
                   stops_on_error=False)
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.ERROR
    assert line_rows(result) == [(10, "error"), (20, "success")]
    assert trace.read_text().count("\n") == 1


def test_inactive_lines_do_not_run(tmp_path):
    trace = tmp_path / "trace.txt"
    job = make_job("inactive-line", (10, "testing.touch", {"path": str(trace)}, False),
                   (20, "testing.echo", {"text": "only me"}))
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.SUCCESS
    assert line_rows(result) == [(20, "success")]
    assert not trace.exists()


def test_a_job_with_no_active_lines_ends_info():
    job = make_job("empty")
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.INFO
    assert "no active lines" in result.message


def test_a_warning_line_makes_the_run_warning():
    job = make_job("warns", (10, "testing.warn", {"message": "disk almost full"}), (20, "testing.echo", {}))
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.WARNING
    assert line_rows(result) == [(10, "warning"), (20, "success")]
    assert JobLogEntry.objects.filter(result=result, level="WARNING", message="disk almost full").exists()


def test_shell_output_goes_to_the_log_in_order_and_non_zero_exit_fails():
    job = make_job("shell", (10, "core.shell", {"command": "echo one; echo two >&2; echo three; exit 4"}))
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.ERROR
    assert "status 4" in result.message
    messages = list(result.log_entries.filter(line_no=10).order_by("seq").values_list("level", "message"))
    stdout = [m for level, m in messages if level == "INFO" and m in ("one", "three")]
    assert stdout == ["one", "three"]
    assert ("WARNING", "two") in messages
    seqs = list(result.log_entries.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))


def test_context_variables_and_run_parameters_are_resolved_once_and_stored():
    command = 'echo "$JOBS_JOB_IDENTIFIER" "$JOBS_PARAM_DAYS" "$JOBS_TODAY"'
    job = make_job("vars", (10, "core.shell", {"command": command}),
                   (20, "testing.echo", {"text": "${job.identifier} ${param.days} ${today}"}),
                   params=[{"name": "days", "type": "int", "default": 7}])
    result = wait_for_status(start_run(job, parameters={"days": "3"}).id)
    assert result.status == Status.SUCCESS, result.message
    assert result.parameters == {"days": 3}
    assert result.variables["param.days"] == 3
    shell_line, echo_line = result.line_results.order_by("line_no")
    assert shell_line.parameters["command"] == command  # the shell gets the values as environment variables
    assert echo_line.parameters["text"] == f"vars 3 {result.variables['today']}"
    assert result.log_entries.filter(line_no=10, message=f"vars 3 {result.variables['today']}").exists()
    assert result.log_entries.filter(line_no=20, message=f"vars 3 {result.variables['today']}").exists()


def test_a_second_delivery_of_the_same_message_runs_nothing(tmp_path):
    trace = tmp_path / "trace.txt"
    job = make_job("once", (10, "testing.touch", {"path": str(trace)}))
    result = start_run(job)
    wait_for_status(result.id)
    publish(result)  # the broker delivers the same message again
    publish(result)
    probe = wait_for_status(start_run(make_job("after", (10, "testing.echo", {}))).id)
    assert probe.status == Status.SUCCESS  # the worker has handled the duplicates by now
    assert trace.read_text().count("\n") == 1
    assert JobResult.objects.get(id=result.id).line_results.count() == 1


def test_when_the_runner_itself_fails_the_run_ends_error_with_the_traceback():
    job = make_job("runner-bug", (10, "testing.break_runner", {}))
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.ERROR
    assert "The runner failed" in result.message
    assert result.log_entries.filter(level="ERROR", message__contains="simulated failure inside the runner").exists()
    assert result.finished_at is not None


def test_many_log_lines_are_written_in_batches():
    job = make_job("chatty", (10, "core.shell", {"command": "seq 1 5000"}))
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.SUCCESS
    lines = result.log_entries.filter(line_no=10, level="INFO").order_by("seq")
    numbers = list(lines.values_list("message", flat=True))
    assert numbers[:5000] == [str(n) for n in range(1, 5001)]


def test_the_worker_runs_the_job_as_edited_since_its_last_run():
    """The worker keeps each job's plan between runs; any edit must reach the next run."""
    job = make_job("edited", (10, "testing.echo", {"text": "first version"}))
    first = wait_for_status(start_run(job).id)
    line = job.lines.get()
    line.parameters = {"text": "second version"}
    line.save()
    second = wait_for_status(start_run(job).id)
    assert first.log_entries.filter(message="first version").exists()
    assert second.log_entries.filter(message="second version").exists()
    assert not second.log_entries.filter(message="first version").exists()


def test_the_claim_stores_the_variables_and_the_number_of_lines_with_the_first_line():
    job = make_job("counted", (10, "testing.echo", {}), (20, "testing.echo", {}), (30, "testing.echo", {}, False))
    result = wait_for_status(start_run(job).id)
    assert (result.status, result.lines_total) == (Status.SUCCESS, 2)
    assert result.variables["job.identifier"] == "counted"
    assert result.worker and result.started_at <= result.line_results.order_by("line_no")[0].started_at


def test_a_pool_process_keeps_what_start_up_loaded_out_of_the_collector_s_walks():
    result = wait_for_status(start_run(make_job("frozen", (10, "testing.gc_frozen", {}))).id)
    frozen = int(result.line_results.get().message.split()[0])
    assert frozen > 10_000, result.line_results.get().message  # Django, Celery and the registry at least
