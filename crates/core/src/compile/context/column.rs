//! `api.Column` as dbt-postgres gives it (`adapter.get_columns_in_relation`,
//! `api.Column.create`): its fields (`name`, `column`, `quoted`, `dtype`,
//! `data_type`, `char_size`, `numeric_precision`, `numeric_scale`) and the
//! methods packages call (`is_string()`, `is_number()`, `is_float()`,
//! `is_integer()`, `is_numeric()`, `string_size()`, `string_type()`,
//! `literal()`, `can_expand_to()`).

use crate::text::quote_ident;
use minijinja::value::{from_args, Enumerator, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};
use std::sync::Arc;

/// A column: its name and PostgreSQL's type as `format_type` writes it
/// (`character varying(10)`, `numeric(10,2)`, `integer`).
#[derive(Debug)]
pub(super) struct ColumnObj {
    name: String,
    data_type: String,
}

const FIELDS: &[&str] = &[
    "name",
    "column",
    "quoted",
    "dtype",
    "data_type",
    "char_size",
    "numeric_precision",
    "numeric_scale",
];

impl ColumnObj {
    pub(super) fn value(name: &str, data_type: &str) -> Value {
        Value::from_object(ColumnObj {
            name: name.to_string(),
            data_type: data_type.to_string(),
        })
    }

    /// The type without its size: `character varying`, `numeric`.
    fn dtype(&self) -> &str {
        self.data_type
            .split_once('(')
            .map_or(self.data_type.as_str(), |(base, _)| base)
            .trim()
    }

    /// The numbers in the type's parentheses.
    fn sizes(&self) -> Vec<i64> {
        self.data_type
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(inside, _)| {
                inside
                    .split(',')
                    .filter_map(|n| n.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn is_string(&self) -> bool {
        matches!(
            self.dtype().to_lowercase().as_str(),
            "text" | "character varying" | "character" | "varchar" | "char" | "string"
        )
    }

    fn is_integer(&self) -> bool {
        matches!(
            self.dtype().to_lowercase().as_str(),
            "smallint"
                | "integer"
                | "bigint"
                | "smallserial"
                | "serial"
                | "bigserial"
                | "int2"
                | "int4"
                | "int8"
                | "int"
        )
    }

    fn is_float(&self) -> bool {
        matches!(
            self.dtype().to_lowercase().as_str(),
            "real" | "double precision" | "float4" | "float8" | "float"
        )
    }

    fn is_numeric(&self) -> bool {
        matches!(self.dtype().to_lowercase().as_str(), "numeric" | "decimal")
    }

    fn char_size(&self) -> Option<i64> {
        self.is_string()
            .then(|| self.sizes().first().copied())
            .flatten()
    }
}

impl Object for ColumnObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let numeric = self.is_numeric();
        Some(match key.as_str()? {
            "name" | "column" => Value::from(self.name.as_str()),
            "quoted" => Value::from(quote_ident(&self.name)),
            "dtype" => Value::from(self.dtype()),
            "data_type" => Value::from(self.data_type.as_str()),
            "char_size" => Value::from(self.char_size()),
            "numeric_precision" => {
                Value::from(numeric.then(|| self.sizes().first().copied()).flatten())
            }
            "numeric_scale" => Value::from(numeric.then(|| self.sizes().get(1).copied()).flatten()),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(FIELDS)
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "is_string" => Ok(Value::from(self.is_string())),
            "is_integer" => Ok(Value::from(self.is_integer())),
            "is_float" => Ok(Value::from(self.is_float())),
            "is_numeric" => Ok(Value::from(self.is_numeric())),
            "is_number" => Ok(Value::from(
                self.is_integer() || self.is_float() || self.is_numeric(),
            )),
            // dbt: 256 for a string of no declared size; an error otherwise.
            "string_size" => {
                if !self.is_string() {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!(
                            "column `{}` is not a string: it has no string_size()",
                            self.name
                        ),
                    ));
                }
                Ok(Value::from(self.char_size().unwrap_or(256)))
            }
            "string_type" => {
                let (size,): (i64,) = from_args(args)?;
                Ok(Value::from(format!("character varying({size})")))
            }
            "literal" => {
                let (value,): (Value,) = from_args(args)?;
                Ok(Value::from(format!("{value}::{}", self.data_type)))
            }
            // A string column can grow to a longer one (dbt's rule).
            "can_expand_to" => {
                let (other,): (Value,) = from_args(args)?;
                let Some(o) = other.downcast_object_ref::<ColumnObj>() else {
                    return Ok(Value::from(false));
                };
                let grows = self.is_string()
                    && o.is_string()
                    && self.char_size().unwrap_or(256) < o.char_size().unwrap_or(256);
                Ok(Value::from(grows))
            }
            _ => Err(super::no_method("api.Column", method)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ColumnObj;

    #[test]
    fn a_columns_kind_and_size_come_from_its_type() {
        let c = ColumnObj {
            name: "n".into(),
            data_type: "character varying(10)".into(),
        };
        assert!(c.is_string() && !c.is_float());
        assert_eq!(c.dtype(), "character varying");
        assert_eq!(c.char_size(), Some(10));
        let n = ColumnObj {
            name: "a".into(),
            data_type: "numeric(10,2)".into(),
        };
        assert!(n.is_numeric() && !n.is_integer());
        assert_eq!(n.sizes(), [10, 2]);
        let f = ColumnObj {
            name: "f".into(),
            data_type: "double precision".into(),
        };
        assert!(f.is_float());
        let t = ColumnObj {
            name: "t".into(),
            data_type: "text".into(),
        };
        assert_eq!(t.char_size(), None);
    }
}
