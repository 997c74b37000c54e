//! The warehouse while rendering: `execute`, `run_query`, `statement` /
//! `load_result` and the adapter's catalog methods.
//!
//! Compiling has no database: these record that the node uses the warehouse
//! (so it is rendered again right before it runs) and answer as dbt does
//! while `execute` is false. A render given a [`RenderWarehouse`] (at run
//! time) asks it: the templates' own queries, the catalog's answers
//! (relations, columns) and the adapter's changes ([`WarehouseChange`]),
//! whose SQL the warehouse crate writes and sends.

use crate::compile::context::{fail, json_to_value, no_method, with_state};
use crate::error::Code;
use minijinja::value::{Kwargs, Object, ObjectRepr, Value};
use minijinja::{Environment, Error, ErrorKind, State};
use serde_json::Value as Json;
use std::fmt;
use std::sync::Arc;

/// What a query returned: column names and PostgreSQL type names, and rows
/// of JSON values (numbers as numbers, NULL as null, the rest as text).
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Vec<Json>>,
    /// The command tag's row count (`INSERT 0 5` → 5).
    pub rows_affected: u64,
}

/// The database a render at run time reads from, on its own connection.
pub trait RenderWarehouse: Send + Sync + fmt::Debug {
    /// Runs `sql` (one statement, or several without results) and returns
    /// the last statement's rows; the error is the database's message.
    fn run_sql(&self, sql: &str) -> Result<QueryResult, String>;
    /// The catalog's kind (`relkind`: r, p, v, m, f) of the table, view,
    /// materialized view or foreign table `schema.name`; none when there
    /// is no such relation.
    fn relation_kind(&self, schema: &str, name: &str) -> Result<Option<String>, String>;
    /// The columns (name, type) of relation `schema.name`, in order.
    fn columns(&self, schema: &str, name: &str) -> Result<Vec<(String, String)>, String>;
    /// The relations (name, relkind) of `schema`, by name.
    fn relations(&self, schema: &str) -> Result<Vec<(String, String)>, String>;
    /// Makes one of the adapter's changes (`adapter.drop_relation(…)`…).
    fn change(&self, change: &WarehouseChange) -> Result<(), String>;
}

/// A change a template asks of the warehouse through the adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarehouseChange {
    /// `drop_relation`: the relation (kind: table, view or materialized
    /// view) and what depends on it, if it exists.
    DropRelation {
        kind: &'static str,
        schema: String,
        name: String,
    },
    /// `truncate_relation`.
    Truncate { schema: String, name: String },
    /// `rename_relation`: within its schema.
    Rename {
        kind: &'static str,
        schema: String,
        name: String,
        new_name: String,
    },
    /// `create_schema`, if it does not exist.
    CreateSchema(String),
    /// `drop_schema` and everything in it, if it exists.
    DropSchema(String),
}

/// The warehouse of the current render, if it has one; either way, records
/// that the node's template uses the warehouse.
fn warehouse() -> Option<Arc<dyn RenderWarehouse>> {
    with_state(|s| {
        s.uses_warehouse = true;
        s.warehouse.clone()
    })
    .flatten()
}

fn query(wh: &dyn RenderWarehouse, sql: &str) -> Result<QueryResult, Error> {
    // Under --empty a ref() read here is a subquery that needs its alias
    // now, not once the model's SQL is whole.
    let settled = crate::compile::empty::settle_aliases(sql.to_string());
    let sql = settled.as_str();
    wh.run_sql(sql).map_err(|message| {
        fail(
            Code::RunRenderQuery,
            format!("a query run while rendering failed: {message}"),
            format!("the query was: {}", sql.trim()),
        )
    })
}

/// A catalog question of a render (`what`: the adapter method that asked)
/// whose answer did not come.
fn catalog_failed(what: &str, message: String) -> Error {
    fail(
        Code::RunRenderQuery,
        format!("{what} failed while rendering: {message}"),
        "check that the server runs and that the target's role may read the catalog".to_string(),
    )
}

/// `execute`: false while compiling, true in a render at run time. Testing
/// it marks the node as one that uses the warehouse.
#[derive(Debug)]
pub(super) struct ExecuteFlag;

impl Object for ExecuteFlag {
    fn is_true(self: &Arc<Self>) -> bool {
        warehouse().is_some()
    }
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if warehouse().is_some() {
            "True"
        } else {
            "False"
        })
    }
}

pub(super) fn add_warehouse_functions(env: &mut Environment<'static>) {
    env.add_global("execute", Value::from_object(ExecuteFlag));
    env.add_function("run_query", |sql: Value| -> Result<Value, Error> {
        match warehouse() {
            Some(wh) => Ok(table_value(query(&*wh, &sql.to_string())?)),
            None => Ok(Value::from(())),
        }
    });
    env.add_function("load_result", |name: &str| {
        with_state(|s| s.statements.get(name).cloned())
            .flatten()
            .unwrap_or_default()
    });
    env.add_global("statement", Value::from_object(Statement));
    env.add_function("load_relation", |relation: Value| -> Result<Value, Error> {
        get_relation_of(&relation)
    });
}

/// `{% call statement('name', fetch_result=True) %}sql{% endcall %}`: runs
/// the block's SQL when there is a warehouse and keeps its result for
/// `load_result('name')`. (An object, as calling `caller` needs the state.)
#[derive(Debug)]
struct Statement;

impl Object for Statement {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        statement(state, args)
    }
}

fn statement(state: &mut State, args: &[Value]) -> Result<Value, Error> {
    let (pos, kwargs): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
    let name = match pos.first() {
        Some(v) => v.to_string(),
        None => kwargs
            .get::<Option<String>>("name")?
            .unwrap_or_else(|| "statement".into()),
    };
    let fetch = kwargs.get::<Option<bool>>("fetch_result")?.unwrap_or(false);
    let _: Option<Value> = kwargs.get("auto_begin")?;
    let _: Option<Value> = kwargs.get("language")?;
    let caller: Option<Value> = kwargs.get("caller")?;
    kwargs.assert_all_used()?;
    let Some(wh) = warehouse() else {
        return Ok(Value::from(""));
    };
    let sql = match caller {
        Some(c) => c.call(state, &[])?.to_string(),
        None => return Err(fail(
            Code::RunStatement,
            "statement() is called with {% call statement(...) %}…{% endcall %}".into(),
            "put the SQL between {% call statement('name', fetch_result=True) %} and {% endcall %}",
        )),
    };
    let result = query(&*wh, &sql)?;
    let rows_affected = result.rows_affected;
    let (data, table) = if fetch {
        let data: Vec<Value> = result
            .rows
            .iter()
            .map(|r| Value::from(r.iter().map(json_to_value).collect::<Vec<_>>()))
            .collect();
        (Value::from(data), table_value(result))
    } else {
        (Value::from(()), Value::from(()))
    };
    let loaded = super::relation::mapping([
        (
            "response",
            super::relation::mapping([
                ("rows_affected", Value::from(rows_affected)),
                ("code", Value::from("SELECT")),
                ("_message", Value::from(format!("OK {rows_affected}"))),
            ]),
        ),
        ("data", data),
        ("table", table),
    ]);
    with_state(|s| s.statements.insert(name, loaded));
    Ok(Value::from(""))
}

// ---- agate-like tables ------------------------------------------------------------

/// What `run_query()` returns: dbt's agate table, as far as templates read
/// it (`columns`, `rows`, `column_names`, `columns[0].values()`,
/// `rows[0]['name']`, `print_table()`).
#[derive(Debug)]
pub(super) struct Table {
    columns: Vec<(String, String)>,
    rows: Vec<Vec<Value>>,
}

fn table_value(r: QueryResult) -> Value {
    let rows = r
        .rows
        .iter()
        .map(|row| row.iter().map(json_to_value).collect())
        .collect();
    Value::from_object(Table {
        columns: r.columns,
        rows,
    })
}

impl Table {
    fn column_index(&self, key: &Value) -> Option<usize> {
        match key.as_str() {
            Some(name) => self.columns.iter().position(|(n, _)| n == name),
            None => {
                let i = i64::try_from(key.clone()).ok()?;
                let len = self.columns.len() as i64;
                let i = if i < 0 { i + len } else { i };
                (0..len).contains(&i).then_some(i as usize)
            }
        }
    }
}

impl Object for Table {
    /// As agate's: iterating a table gives its rows, `table[i]` a row.
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }
    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.rows.len())
    }
    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Seq(self.rows.len())
    }
    /// A table is true, also with no rows (it is a result, not a list).
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(i) = key.as_i64() {
            let len = self.rows.len() as i64;
            let i = if i < 0 { i + len } else { i };
            return (0..len)
                .contains(&i)
                .then(|| Value::from_object(Row(self.clone(), i as usize)));
        }
        match key.as_str()? {
            "columns" => Some(Value::from_object(Columns(self.clone()))),
            "rows" => Some(Value::from(
                (0..self.rows.len())
                    .map(|i| Value::from_object(Row(self.clone(), i)))
                    .collect::<Vec<_>>(),
            )),
            "column_names" => Some(Value::from(
                self.columns
                    .iter()
                    .map(|(n, _)| n.clone())
                    .collect::<Vec<_>>(),
            )),
            "column_types" => Some(Value::from(
                self.columns
                    .iter()
                    .map(|(_, t)| t.clone())
                    .collect::<Vec<_>>(),
            )),
            _ => None,
        }
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "print_table" => {
                let mut lines = vec![self
                    .columns
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(" | ")];
                for row in &self.rows {
                    lines.push(
                        row.iter()
                            .map(Value::to_string)
                            .collect::<Vec<_>>()
                            .join(" | "),
                    );
                }
                with_state(|s| s.logs.extend(lines));
                Ok(Value::from(()))
            }
            _ => Err(no_method("a run_query() table", method)),
        }
    }
}

/// `table.columns`: by position or by name.
#[derive(Debug)]
struct Columns(Arc<Table>);

impl Object for Columns {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }
    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.columns.len())
    }
    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Seq(self.0.columns.len())
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let i = self.0.column_index(key)?;
        Some(Value::from_object(Column(self.0.clone(), i)))
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "keys" => Ok(Value::from(
                self.0
                    .columns
                    .iter()
                    .map(|(n, _)| n.clone())
                    .collect::<Vec<_>>(),
            )),
            // agate's MappedSequence: (name, column) pairs, and the columns.
            "items" => Ok(Value::from(
                (0..self.0.columns.len())
                    .map(|i| {
                        Value::from(vec![
                            Value::from(self.0.columns[i].0.clone()),
                            Value::from_object(Column(self.0.clone(), i)),
                        ])
                    })
                    .collect::<Vec<_>>(),
            )),
            "values" => Ok(Value::from(
                (0..self.0.columns.len())
                    .map(|i| Value::from_object(Column(self.0.clone(), i)))
                    .collect::<Vec<_>>(),
            )),
            _ => Err(no_method("table.columns", method)),
        }
    }
}

/// One column of a table: `.name`, `.values()`, iterable over its values.
#[derive(Debug)]
struct Column(Arc<Table>, usize);

impl Column {
    fn values(&self) -> Vec<Value> {
        self.0.rows.iter().map(|r| r[self.1].clone()).collect()
    }
}

impl Object for Column {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }
    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.rows.len())
    }
    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Seq(self.0.rows.len())
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str() {
            Some("name") => Some(Value::from(self.0.columns[self.1].0.clone())),
            Some("data_type") => Some(Value::from(self.0.columns[self.1].1.clone())),
            Some(_) => None,
            None => {
                let i = usize::try_from(key.clone()).ok()?;
                self.0.rows.get(i).map(|r| r[self.1].clone())
            }
        }
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "values" => Ok(Value::from(self.values())),
            "values_distinct" => {
                let mut seen = Vec::new();
                for v in self.values() {
                    if !seen.contains(&v) {
                        seen.push(v);
                    }
                }
                Ok(Value::from(seen))
            }
            "values_without_nulls" => Ok(Value::from(
                self.values()
                    .into_iter()
                    .filter(|v| !v.is_none())
                    .collect::<Vec<_>>(),
            )),
            _ => Err(no_method("a table column", method)),
        }
    }
}

/// One row: by position or by column name, iterable over its values.
#[derive(Debug)]
struct Row(Arc<Table>, usize);

impl Object for Row {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }
    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.columns.len())
    }
    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Seq(self.0.columns.len())
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let i = self.0.column_index(key)?;
        Some(self.0.rows[self.1][i].clone())
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "values" => Ok(Value::from(self.0.rows[self.1].clone())),
            "keys" => Ok(Value::from(
                self.0
                    .columns
                    .iter()
                    .map(|(n, _)| n.clone())
                    .collect::<Vec<_>>(),
            )),
            "items" => Ok(Value::from(
                self.0
                    .columns
                    .iter()
                    .zip(&self.0.rows[self.1])
                    .map(|((n, _), v)| Value::from(vec![Value::from(n.clone()), v.clone()]))
                    .collect::<Vec<_>>(),
            )),
            _ => Err(no_method("a table row", method)),
        }
    }
}

// ---- the adapter's catalog methods --------------------------------------------------

/// A relation's attribute as text, when it has one.
fn attr_text(relation: &Value, key: &str) -> Option<String> {
    relation
        .get_attr(key)
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_none())
        .map(|v| v.to_string())
}

/// A relation's schema, or an error naming what needed it.
fn schema_of(relation: &Value, what: &str) -> Result<String, Error> {
    attr_text(relation, "schema").ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("{what} needs a relation with a schema"),
        )
    })
}

/// The SQL word for a relation's kind (`drop view`, `alter materialized view`).
fn kind_word(relation: &Value) -> &'static str {
    match attr_text(relation, "type").as_deref() {
        Some("view") => "view",
        Some("materialized_view") => "materialized view",
        _ => "table",
    }
}

/// A relation's (schema, identifier) as templates pass it: a relation
/// object (ref, source, this, api.Relation.create) or a mapping.
fn schema_and_name(relation: &Value) -> Result<(String, String), Error> {
    let part = |k: &str| attr_text(relation, k);
    match (part("schema"), part("identifier").or_else(|| part("name"))) {
        (Some(s), Some(n)) => Ok((s, n)),
        _ => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("`{relation}` is not a relation with a schema and an identifier"),
        )),
    }
}

fn relation_kind(relkind: &str) -> &'static str {
    match relkind {
        "v" => "view",
        "m" => "materialized_view",
        _ => "table",
    }
}

fn relation_object(database: Option<String>, schema: &str, name: &str, kind: &str) -> Value {
    Value::from_object(super::relation::NamedRelation {
        database,
        schema: Some(schema.to_string()),
        identifier: Some(name.to_string()),
        kind: kind.to_string(),
    })
}

fn database_of(relation: &Value) -> Option<String> {
    attr_text(relation, "database")
}

/// `adapter.get_relation(database, schema, identifier)` / `load_relation(r)`:
/// the relation as it exists in the catalog, or none.
fn find_relation(database: Option<String>, schema: &str, name: &str) -> Result<Value, Error> {
    let Some(wh) = warehouse() else {
        return Ok(Value::from(()));
    };
    let kind = wh
        .relation_kind(schema, name)
        .map_err(|m| catalog_failed("adapter.get_relation()", m))?;
    Ok(match kind {
        Some(kind) => relation_object(database, schema, name, relation_kind(&kind)),
        None => Value::from(()),
    })
}

pub(super) fn get_relation_of(relation: &Value) -> Result<Value, Error> {
    let (schema, name) = schema_and_name(relation)?;
    find_relation(database_of(relation), &schema, &name)
}

pub(super) fn get_relation(args: &[Value]) -> Result<Value, Error> {
    let (pos, kwargs): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
    let arg = |i: usize, k: &str| -> Result<Option<String>, Error> {
        Ok(match pos.get(i) {
            Some(v) if !v.is_none() => Some(v.to_string()),
            Some(_) => None,
            None => kwargs.get::<Option<String>>(k)?,
        })
    };
    let database = arg(0, "database")?;
    let (Some(schema), Some(name)) = (arg(1, "schema")?, arg(2, "identifier")?) else {
        return Err(Error::new(
            ErrorKind::MissingArgument,
            "adapter.get_relation(database, schema, identifier) needs a schema and an identifier",
        ));
    };
    find_relation(database, &schema, &name)
}

/// `adapter.get_columns_in_relation(r)`: its columns as `api.Column`s, in order.
pub(super) fn get_columns_in_relation(relation: &Value) -> Result<Value, Error> {
    let Some(wh) = warehouse() else {
        return Ok(Value::from(Vec::<Value>::new()));
    };
    let (schema, name) = schema_and_name(relation)?;
    let columns = wh
        .columns(&schema, &name)
        .map_err(|m| catalog_failed("adapter.get_columns_in_relation()", m))?;
    Ok(Value::from(
        columns
            .iter()
            .map(|(n, t)| column_value(n, t))
            .collect::<Vec<_>>(),
    ))
}

/// An `api.Column` (see `column.rs`).
pub(super) fn column_value(name: &str, data_type: &str) -> Value {
    super::column::ColumnObj::value(name, data_type)
}

/// `adapter.list_relations_without_caching(schema_relation)`.
pub(super) fn list_relations(relation: &Value) -> Result<Value, Error> {
    let Some(wh) = warehouse() else {
        return Ok(Value::from(Vec::<Value>::new()));
    };
    let schema = schema_of(relation, "list_relations_without_caching()")?;
    let relations = wh
        .relations(&schema)
        .map_err(|m| catalog_failed("adapter.list_relations_without_caching()", m))?;
    let database = database_of(relation);
    Ok(Value::from(
        relations
            .iter()
            .map(|(n, k)| relation_object(database.clone(), &schema, n, relation_kind(k)))
            .collect::<Vec<_>>(),
    ))
}

/// The adapter's methods that change the warehouse: `drop_relation`,
/// `rename_relation`, `truncate_relation`, `create_schema`, `drop_schema`.
/// While compiling they do nothing (dbt's parse does not run them either).
pub(super) fn change(method: &str, args: &[Value]) -> Result<Value, Error> {
    let (pos, _kwargs): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
    let arg = |i: usize| {
        pos.get(i).ok_or_else(|| {
            Error::new(
                ErrorKind::MissingArgument,
                format!("adapter.{method}() needs a relation"),
            )
        })
    };
    let change = match method {
        "drop_relation" => {
            let r = arg(0)?;
            let (schema, name) = schema_and_name(r)?;
            WarehouseChange::DropRelation {
                kind: kind_word(r),
                schema,
                name,
            }
        }
        "truncate_relation" => {
            let (schema, name) = schema_and_name(arg(0)?)?;
            WarehouseChange::Truncate { schema, name }
        }
        "rename_relation" => {
            let (from, to) = (arg(0)?, arg(1)?);
            let (schema, name) = schema_and_name(from)?;
            let (_, new_name) = schema_and_name(to)?;
            WarehouseChange::Rename {
                kind: kind_word(from),
                schema,
                name,
                new_name,
            }
        }
        "create_schema" | "drop_schema" => {
            let schema = schema_of(arg(0)?, &format!("adapter.{method}()"))?;
            if method == "create_schema" {
                WarehouseChange::CreateSchema(schema)
            } else {
                WarehouseChange::DropSchema(schema)
            }
        }
        _ => {
            return Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("adapter has no method `{method}`"),
            ))
        }
    };
    if let Some(wh) = warehouse() {
        wh.change(&change)
            .map_err(|m| catalog_failed(&format!("adapter.{method}()"), m))?;
    }
    Ok(Value::from(()))
}
