"""sweep_state: once a day, delete the rows of the app's state that no request reads any more."""

from datetime import UTC, datetime

import azure.functions as func

bp = func.Blueprint()

# NCRONTAB, in UTC: {second} {minute} {hour} {day} {month} {day of week}. Daily at 03:30, off the hour,
# when hourly counters are renewed.
SCHEDULE = "0 30 3 * * *"


@bp.function_name("sweep_state")
@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False, use_monitor=True)
def sweep_state(timer: func.TimerRequest) -> None:
    """Deletes expired Idempotency-Keys and the limit counters of past windows (see shared.sweep).

    use_monitor: the host keeps the schedule's last and next runs in AzureWebJobsStorage, so a run
    missed while the app was stopped happens when it starts again (`timer.past_due`). Not
    run_on_startup: every new instance, and Flex Consumption starts them on demand, would sweep.

    Azure does not retry a timer function that fails: it runs again at its next occurrence (no retry
    policy is set). So a failure is logged at ERROR rather than raised, and the rows it left are
    deleted by the next day's run, which finds them again.
    """
    from shared.sweep import sweep  # on first use: the state modules weigh on every cold start

    sweep(datetime.now(UTC))
