//! Snapshots (dbt's type-2 history): the statements that record a source
//! query's changes into the snapshot table, as dbt-postgres writes them. The
//! source query is first materialized as the temporary table
//! [`SOURCE_TABLE`]; these statements read its columns.

use crate::error::{Code, Problem};
use crate::manifest::node_config::CheckCols;
use crate::manifest::Node;
use crate::text::quote_ident;

/// The temporary table the source query is materialized into.
pub const SOURCE_TABLE: &str = "pm_snapshot_source";
/// The temporary table of this run's changes.
const CHANGES_TABLE: &str = "pm_snapshot_changes";

#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// A row changed when its `updated_at` is newer than the snapshot's.
    Timestamp { updated_at: String },
    /// A row changed when one of these columns differs (None: all columns).
    Check { columns: Option<Vec<String>> },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HardDeletes {
    Ignore,
    Invalidate,
    NewRecord,
}

/// The snapshot's meta columns, as `snapshot_meta_column_names` names them.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaNames {
    pub valid_from: String,
    pub valid_to: String,
    pub scd_id: String,
    pub updated_at: String,
    pub is_deleted: String,
}

/// How one snapshot records changes.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotPlan {
    /// The snapshot table, quoted and schema-qualified.
    pub relation: String,
    pub unique_key: Vec<String>,
    pub strategy: Strategy,
    pub hard_deletes: HardDeletes,
    /// `dbt_valid_to_current`: the valid-to of current rows (else null).
    pub valid_to_current: Option<String>,
    pub names: MetaNames,
}

fn problem(n: &Node, message: String, help: &str) -> Problem {
    Problem::new(
        Code::SnapshotConfig,
        format!("snapshot `{}`: {message}", n.name),
    )
    .help(help.to_string())
}

impl SnapshotPlan {
    /// The plan of snapshot `n`, its config checked.
    pub fn of(n: &Node) -> Result<SnapshotPlan, Problem> {
        let c = &n.typed_config;
        let unique_key = Some(c.unique_key.clone())
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                problem(
                    n,
                    "has no unique_key".into(),
                    "set unique_key: the column (or list of columns) that identifies a row",
                )
            })?;
        let strategy = match c.strategy.as_deref() {
            Some("timestamp") => Strategy::Timestamp {
                updated_at: c.updated_at.clone().ok_or_else(|| {
                    problem(
                        n,
                        "the timestamp strategy needs updated_at".into(),
                        "set updated_at: the column that says when a row last changed",
                    )
                })?,
            },
            Some("check") => Strategy::Check {
                columns: match &c.check_cols {
                    Some(CheckCols::All) => None,
                    Some(CheckCols::Columns(cols)) if !cols.is_empty() => Some(cols.clone()),
                    _ => {
                        return Err(problem(
                            n,
                            "the check strategy needs check_cols".into(),
                            "set check_cols: a list of columns, or 'all'",
                        ))
                    }
                },
            },
            other => {
                return Err(problem(
                    n,
                    format!("strategy `{}` is not one pm knows", other.unwrap_or("")),
                    "set strategy: timestamp (with updated_at) or check (with check_cols)",
                ))
            }
        };
        let hard_deletes = match (c.hard_deletes.as_deref(), c.invalidate_hard_deletes) {
            (Some("invalidate"), _) => HardDeletes::Invalidate,
            (Some("new_record"), _) => HardDeletes::NewRecord,
            (Some("ignore"), _) => HardDeletes::Ignore,
            (Some(other), _) => {
                return Err(problem(
                    n,
                    format!("hard_deletes `{other}` is not one of ignore, invalidate, new_record"),
                    "set hard_deletes: ignore, invalidate or new_record",
                ))
            }
            (None, true) => HardDeletes::Invalidate,
            (None, false) => HardDeletes::Ignore,
        };
        let name = |key: &str, default: &str| {
            c.snapshot_meta_column_names
                .get(key)
                .cloned()
                .unwrap_or_else(|| default.to_string())
        };
        Ok(SnapshotPlan {
            relation: n.relation(),
            unique_key,
            strategy,
            hard_deletes,
            valid_to_current: c.dbt_valid_to_current.clone(),
            names: MetaNames {
                valid_from: name("dbt_valid_from", "dbt_valid_from"),
                valid_to: name("dbt_valid_to", "dbt_valid_to"),
                scd_id: name("dbt_scd_id", "dbt_scd_id"),
                updated_at: name("dbt_updated_at", "dbt_updated_at"),
                is_deleted: name("dbt_is_deleted", "dbt_is_deleted"),
            },
        })
    }

    /// dbt-postgres' `snapshot_get_time()`.
    fn now() -> &'static str {
        "now()::timestamp without time zone"
    }

    /// dbt's `snapshot_hash_arguments`: md5 of the arguments as text, `|`-joined.
    fn hash(args: &[String]) -> String {
        let parts: Vec<String> = args
            .iter()
            .map(|a| format!("coalesce(cast({a} as varchar ), '')"))
            .collect();
        format!("md5({})", parts.join(" || '|' || "))
    }

    /// The strategy's `updated_at` of a source row (`alias.` qualified).
    fn updated_at(&self, alias: &str) -> String {
        match &self.strategy {
            Strategy::Timestamp { updated_at } => format!("{alias}.{updated_at}"),
            Strategy::Check { .. } => Self::now().to_string(),
        }
    }

    fn scd_id(&self, alias: &str) -> String {
        let mut args: Vec<String> = self
            .unique_key
            .iter()
            .map(|k| format!("{alias}.{k}"))
            .collect();
        args.push(self.updated_at(alias));
        Self::hash(&args)
    }

    /// The valid-to of a new current row whose valid-from is `from`.
    fn valid_to_of_current(&self, from: &str) -> String {
        match &self.valid_to_current {
            Some(current) => format!("coalesce(nullif({from}, {from}), {current})"),
            None => format!("nullif({from}, {from})"),
        }
    }

    /// The snapshot's current rows (`alias.` qualified).
    fn is_current(&self, alias: &str) -> String {
        let to = format!("{alias}.{}", quote_ident(&self.names.valid_to));
        match &self.valid_to_current {
            Some(current) => format!("({to} is null or {to} = {current})"),
            None => format!("{to} is null"),
        }
    }

    fn keys_match(&self) -> String {
        self.unique_key
            .iter()
            .map(|k| format!("d.{k} = s.{k}"))
            .collect::<Vec<_>>()
            .join(" and ")
    }

    fn row_changed(&self, source_columns: &[String]) -> String {
        match &self.strategy {
            Strategy::Timestamp { updated_at } => format!(
                "(d.{} < s.{updated_at})",
                quote_ident(&self.names.valid_from)
            ),
            Strategy::Check { columns } => {
                let quoted: Vec<String>;
                let cols: &[String] = match columns {
                    Some(c) => c,
                    None => {
                        quoted = source_columns.iter().map(|c| quote_ident(c)).collect();
                        &quoted
                    }
                };
                let parts: Vec<String> = cols
                    .iter()
                    .map(|c| format!("d.{c} is distinct from s.{c}"))
                    .collect();
                format!("({})", parts.join(" or "))
            }
        }
    }

    fn meta_columns(&self) -> Vec<String> {
        let n = &self.names;
        let mut cols = vec![&n.scd_id, &n.updated_at, &n.valid_from, &n.valid_to];
        if self.hard_deletes == HardDeletes::NewRecord {
            cols.push(&n.is_deleted);
        }
        cols.into_iter().map(|c| quote_ident(c)).collect()
    }

    /// The first run: the snapshot table from the source rows.
    pub fn create(&self) -> String {
        let upd = self.updated_at("s");
        let n = &self.names;
        let deleted = if self.hard_deletes == HardDeletes::NewRecord {
            format!(", 'False'::text as {}", quote_ident(&n.is_deleted))
        } else {
            String::new()
        };
        format!(
            "create table {rel} as\nselect s.*, {scd} as {scd_col}, {upd} as {upd_col}, {upd} as {from_col}, {to} as {to_col}{deleted}\nfrom {SOURCE_TABLE} s",
            rel = self.relation,
            scd = self.scd_id("s"),
            scd_col = quote_ident(&n.scd_id),
            upd_col = quote_ident(&n.updated_at),
            from_col = quote_ident(&n.valid_from),
            to = self.valid_to_of_current(&upd),
            to_col = quote_ident(&n.valid_to),
        )
    }

    /// A later run: `alter table … add column` for source columns the
    /// snapshot lacks, then the changes, then closing the changed rows and
    /// inserting their new versions. `source` and `existing` are (name, type).
    pub fn merge(&self, source: &[(String, String)], existing: &[String]) -> Vec<String> {
        let mut statements: Vec<String> = source
            .iter()
            .filter(|(c, _)| !existing.contains(c))
            .map(|(c, t)| {
                format!(
                    "alter table {} add column {} {t}",
                    self.relation,
                    quote_ident(c)
                )
            })
            .collect();
        let names: Vec<String> = source.iter().map(|(c, _)| c.clone()).collect();
        statements.push(self.changes(&names));
        let n = &self.names;
        let (scd, to) = (quote_ident(&n.scd_id), quote_ident(&n.valid_to));
        statements.push(format!(
            "update {rel} as t set {to} = c.{to} from {CHANGES_TABLE} c \
             where c.{scd}::text = t.{scd}::text and c.dbt_change_type in ('update', 'delete') and {current}",
            rel = self.relation,
            current = self.is_current("t"),
        ));
        let mut columns: Vec<String> = names.iter().map(|c| quote_ident(c)).collect();
        columns.extend(self.meta_columns());
        let list = columns.join(", ");
        statements.push(format!(
            "insert into {} ({list}) select {list} from {CHANGES_TABLE} where dbt_change_type = 'insert'",
            self.relation
        ));
        statements
    }

    /// The temporary table of this run's changes (dbt's staging table).
    fn changes(&self, source_columns: &[String]) -> String {
        let n = &self.names;
        let cols = |alias: &str| -> String {
            source_columns
                .iter()
                .map(|c| format!("{alias}.{}", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let new_record = self.hard_deletes == HardDeletes::NewRecord;
        let deleted_flag = |v: &str| {
            if new_record {
                format!(", '{v}'::text as {}", quote_ident(&n.is_deleted))
            } else {
                String::new()
            }
        };
        let was_deleted = if new_record {
            format!(" or d.{} = 'True'", quote_ident(&n.is_deleted))
        } else {
            String::new()
        };
        let upd = self.updated_at("s");
        let first_key = &self.unique_key[0];
        let meta = |scd: &str, from: &str, to: &str, flag: &str| {
            format!(
                "{scd} as {}, {from} as {}, {from} as {}, {to} as {}{}",
                quote_ident(&n.scd_id),
                quote_ident(&n.updated_at),
                quote_ident(&n.valid_from),
                quote_ident(&n.valid_to),
                deleted_flag(flag)
            )
        };
        let changed = self.row_changed(source_columns);
        let mut parts = vec![
            format!(
                "select 'insert'::text as dbt_change_type, {src}, {meta}\n\
                 from {SOURCE_TABLE} s left join snapshotted_data d on {on}\n\
                 where d.{first_key} is null or ({changed}{was_deleted})",
                src = cols("s"),
                meta = meta(
                    &self.scd_id("s"),
                    &upd,
                    &self.valid_to_of_current(&upd),
                    "False"
                ),
                on = self.keys_match(),
            ),
            format!(
                "select 'update'::text, {src}, {meta}\n\
                 from {SOURCE_TABLE} s join snapshotted_data d on {on}\n\
                 where ({changed}{was_deleted})",
                src = cols("s"),
                meta = meta(
                    &format!("d.{}", quote_ident(&n.scd_id)),
                    &upd,
                    &upd,
                    "False"
                ),
                on = self.keys_match(),
            ),
        ];
        if self.hard_deletes != HardDeletes::Ignore {
            let not_already = if new_record {
                format!(
                    " and d.{} is distinct from 'True'",
                    quote_ident(&n.is_deleted)
                )
            } else {
                String::new()
            };
            let gone = format!(
                "from snapshotted_data d left join {SOURCE_TABLE} s on {on}\nwhere s.{first_key} is null{not_already}",
                on = self.keys_match()
            );
            let now = Self::now();
            parts.push(format!(
                "select 'delete'::text, {src}, {meta}\n{gone}",
                src = cols("d"),
                meta = meta(&format!("d.{}", quote_ident(&n.scd_id)), now, now, "False"),
            ));
            if new_record {
                let mut args: Vec<String> =
                    self.unique_key.iter().map(|k| format!("d.{k}")).collect();
                args.push(now.to_string());
                parts.push(format!(
                    "select 'insert'::text, {src}, {meta}\n{gone}",
                    src = cols("d"),
                    meta = meta(
                        &Self::hash(&args),
                        now,
                        &self.valid_to_of_current(now),
                        "True"
                    ),
                ));
            }
        }
        format!(
            "create temporary table {CHANGES_TABLE} on commit drop as\n\
             with snapshotted_data as (select * from {rel} d where {current})\n{body}",
            rel = self.relation,
            current = self.is_current("d"),
            body = parts.join("\nunion all\n"),
        )
    }
}
