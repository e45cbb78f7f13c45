"""The commented starter config that ``wellkept init`` writes."""

STARTER_CONFIG = """\
# wellkept.yml: what to maintain, how, and when.
# Reference: docs/configuration.md. Validate with: wellkept check
# ${VAR} and ${VAR:-default} are read from the environment; keep passwords there.

state: sqlite:///.wellkept/state.db      # run history; postgresql://... to share it
timezone: UTC                            # schedules are evaluated in this timezone

targets:
  app:
    url: "sqlite:///app.sqlite3"         # relative paths are relative to this file
  # pg:    {url: "postgresql://wellkept:${PG_PASSWORD}@127.0.0.1:5432/app", lock_timeout: 5s}
  # shop:  {url: "mysql://wellkept:${MYSQL_PASSWORD}@127.0.0.1:3306/shop"}
  # cache: {url: "redis://127.0.0.1:6379/0"}
  # a target named `host` (this machine) always exists

tasks:
  app-stats:     {kind: stats, target: app}
  app-analyze:   {kind: analyze, target: app}
  app-vacuum:    {kind: vacuum, target: app, min_free_percent: 10}
  app-integrity: {kind: integrity, target: app, mode: full}
  app-backup:    {kind: backup, target: app, destination: backups/, verify: restore, keep_last: 7}
  # the recovery point objective: alert when the newest verified backup is older than this.
  # Judged after every run and every health check, so it needs no schedule; without it, a
  # target with a backup task is held to the default of 1 day (backups here are weekly).
  app-backup-fresh: {kind: backup_freshness, target: app, rpo: 8d, tier: restore}
  # purge-sessions:
  #   kind: cleanup
  #   target: app
  #   table: django_session
  #   date_column: expire_date
  #   retention: 0s                      # expired sessions: expire_date is already past
  #   batch_size: 5000
  # host-stats:  {kind: stats, target: host}

# The five default schedules, evaluated in `timezone`. `wellkept serve` fires them and recovers
# interrupted runs (docs/coordinator.md); `wellkept run --schedule NAME` runs one now.
# Each may also take: window: "01:00-05:00" (no run starts outside it), grace: 1h,
# catch_up: true (after downtime, run the newest missed slot once), enabled: false.
# backup_testing and disaster_recovery_test take a fresh backup, restore it into a scratch
# file and compare its row counts (verify: restore), and check the live file's integrity.
schedules:
  daily_maintenance:        {cron: "0 2 * * *", tasks: [app-stats, app-analyze]}
  weekly_optimization:      {cron: "0 3 * * 0", tasks: [app-vacuum]}
  monthly_deep_maintenance: {cron: "0 4 1 * *", tasks: [app-integrity]}
  backup_testing:           {cron: "0 5 * * 6", tasks: [app-backup]}
  disaster_recovery_test:   {cron: "0 6 1 * *", tasks: [app-backup, app-integrity]}

# emergency:                             # on the latest `health` run's figures
#   disk-full: {when: "disk_percent > 90", run: [app-vacuum], cooldown: 1h}
# coordinator: {max_concurrent: 2, shutdown_grace: 60s}
# recovery: {lease: 60s, max_attempts: 3, retention: 90d}
"""
