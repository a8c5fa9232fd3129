-- dtm's two coordinator tables on PostgreSQL, as dtm's server reads and
-- writes them (../shared/reference/dtm-semantics.md §3.1), for the tests of
-- `dtxctl import-dtm`. Written for dtx from that description; the names and
-- types of the columns are dtm's, the layout is ours. The test runs it with
-- search_path set to a schema of its own, so no schema is named here.

-- One row per global transaction.
CREATE SEQUENCE trans_global_seq;
CREATE TABLE trans_global (
  id                 bigint       NOT NULL DEFAULT nextval('trans_global_seq'),
  gid                varchar(128) NOT NULL,
  trans_type         varchar(45)  NOT NULL,   -- saga, tcc, msg, xa, workflow
  status             varchar(45)  NOT NULL,   -- prepared ... failed
  query_prepared     varchar(1024) NOT NULL,  -- msg check-back URL
  protocol           varchar(45)  NOT NULL,   -- http, grpc, json-rpc
  create_time        timestamp(0) with time zone DEFAULT NULL,
  update_time        timestamp(0) with time zone DEFAULT NULL,
  finish_time        timestamp(0) with time zone DEFAULT NULL,
  rollback_time      timestamp(0) with time zone DEFAULT NULL,
  options            varchar(1024) DEFAULT '',  -- TransOptions as JSON
  custom_data        varchar(1024) DEFAULT '',
  next_cron_interval int          DEFAULT NULL,  -- seconds
  next_cron_time     timestamp(0) with time zone DEFAULT NULL,
  owner              varchar(128) NOT NULL DEFAULT '',
  ext_data           text,                      -- {"headers":{...}} (legacy)
  result             varchar(1024) DEFAULT '',
  rollback_reason    varchar(1024) DEFAULT '',
  PRIMARY KEY (id),
  CONSTRAINT gid UNIQUE (gid)
);
CREATE INDEX owner ON trans_global (owner);
CREATE INDEX status_next_cron_time ON trans_global (status, next_cron_time);

-- One row per (branch, op); id orders a transaction's rows.
CREATE SEQUENCE trans_branch_op_seq;
CREATE TABLE trans_branch_op (
  id            bigint        NOT NULL DEFAULT nextval('trans_branch_op_seq'),
  gid           varchar(128)  NOT NULL,
  url           varchar(1024) NOT NULL,
  data          text,                 -- unused since dtm moved to bin_data
  bin_data      bytea,                -- the request body
  branch_id     varchar(128)  NOT NULL,
  op            varchar(45)   NOT NULL,
  status        varchar(45)   NOT NULL, -- prepared, succeed, failed
  finish_time   timestamp(0) with time zone DEFAULT NULL,
  rollback_time timestamp(0) with time zone DEFAULT NULL,
  create_time   timestamp(0) with time zone DEFAULT NULL,
  update_time   timestamp(0) with time zone DEFAULT NULL,
  PRIMARY KEY (id),
  CONSTRAINT gid_branch_uniq UNIQUE (gid, branch_id, op)
);
