"""Background jobs (后台任务): the queue (huey), e-mail, the daily digest, periodic clean-ups.

- queue.py: the huey instance, its storage (SQLite in the instance folder, or Redis), `job`
  and `periodic_job` (every run recorded as a JobRun, retried with back-off), the worker;
- runs.py: the runs for the admin's 后台任务 page and 待办, their pruning;
- mail.py: `queue_mail` (after commit) and the job that sends one mail once (SentMail);
- digest.py: `due_items(user, day)` and the daily digest at 08:00 Asia/Shanghai;
- periodic.py: the clean-ups.
"""
