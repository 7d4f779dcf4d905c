-- Security check reports: one row per /check run (typed or scheduled) and one per finding,
-- so /findings shows the last report and a run can be compared with the previous run of
-- the same selection of checks.
CREATE TABLE check_runs (
    id          bigserial PRIMARY KEY,
    -- What was run: 'all' or one check's name. Runs are compared within a selection.
    selection   text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    -- Who ran it (the audit actor's display) and the request id its audit rows carry.
    actor       text NOT NULL,
    request_id  text NOT NULL,
    -- The (check, target) pairs that were checked: [{"check": ..., "target": ...}].
    checked     jsonb NOT NULL
);
CREATE INDEX check_runs_by_selection ON check_runs (selection, id DESC);

CREATE TABLE check_findings (
    run_id      bigint NOT NULL REFERENCES check_runs (id) ON DELETE CASCADE,
    -- Order within the report (worst first).
    position    integer NOT NULL,
    check_name  text NOT NULL,
    target      text NOT NULL,
    severity    text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low', 'info')),
    title       text NOT NULL,
    evidence    text NOT NULL,
    remediation text NOT NULL,
    reference   text NOT NULL,
    PRIMARY KEY (run_id, position)
);
