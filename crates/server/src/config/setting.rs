//! One setting's declaration ([`Setting`]), and the [`Reader`] that reads variables only
//! through declarations, collecting every problem.

use std::cell::RefCell;
use std::collections::HashMap;

use super::ConfigError;
use super::format::{Format, Numeric};

/// Which part of the binary reads a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The configuration of `serve` and of the admin subcommands ([`super::Config`]).
    Service,
    /// Read from the process environment before the configuration (the log filter, the
    /// configuration file).
    Process,
    /// The `request` and `listen` subcommands, which act as a partner application.
    Caller,
}

/// A bound on a numeric setting, as written in the variable.
struct Range<V> {
    min: u64,
    max: u64,
    unit: &'static str,
    number: fn(&V) -> u64,
}

/// A rule on a parsed value, owned by another crate: why the value is refused.
type Rule<V> = fn(&V) -> Result<(), String>;

/// One variable: its name, its format `F` (what it holds and how it is written), its
/// default, its range or the rule of the crate that owns it, who reads it, an example and
/// its one-line doc. Declared once, in [`super::variables`], with `Setting::new(default)`
/// (or `Setting::optional(…)`) and the builder methods below; everything else about the
/// variable (parsing, its checks and their messages, `widget-sessions env`, README's table)
/// derives from the declaration.
pub struct Setting<F: Format> {
    name: &'static str,
    doc: &'static str,
    default: fn() -> F::Value,
    default_doc: Option<&'static str>,
    example: Option<&'static str>,
    range: Option<Range<F::Value>>,
    rule: Option<Rule<F::Value>>,
    scope: Scope,
}

impl<F: Format> Setting<F> {
    /// A setting of the service whose default is `default()`.
    pub(super) const fn new(default: fn() -> F::Value) -> Self {
        Self {
            name: "",
            doc: "",
            default,
            default_doc: None,
            example: None,
            range: None,
            rule: None,
            scope: Scope::Service,
        }
    }

    /// Its name and doc (given by the `variables!` declaration).
    pub(super) const fn declare(self, name: &'static str, doc: &'static str) -> Self {
        Self {
            name,
            doc: doc.trim_ascii(),
            ..self
        }
    }

    /// The default in words, for a default the value alone does not say (Markdown).
    pub(super) const fn default_doc(self, words: &'static str) -> Self {
        Self {
            default_doc: Some(words),
            ..self
        }
    }

    /// An example value, shown in the documentation and with a value that cannot be parsed.
    pub(super) const fn example(self, example: &'static str) -> Self {
        Self {
            example: Some(example),
            ..self
        }
    }

    /// A rule on the parsed value, owned by another crate (its error is reported after the
    /// variable's name).
    pub(super) const fn rule(self, rule: Rule<F::Value>) -> Self {
        Self {
            rule: Some(rule),
            ..self
        }
    }

    /// Who reads it, if not the service's configuration.
    pub(super) const fn scope(self, scope: Scope) -> Self {
        Self { scope, ..self }
    }

    /// The variable's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The value when the variable is unset.
    pub fn default_value(&self) -> F::Value {
        (self.default)()
    }

    /// Checks a parsed value against the range and the rule.
    fn check(&self, value: &F::Value) -> Result<(), String> {
        if let Some(range) = &self.range
            && !(range.min..=range.max).contains(&(range.number)(value))
        {
            let why = format!(
                "must be between {} and {} {}",
                range.min, range.max, range.unit
            );
            return Err(why.trim_end().to_string());
        }
        match self.rule {
            Some(rule) => rule(value),
            None => Ok(()),
        }
    }
}

impl<F: Numeric> Setting<F> {
    /// The least and the greatest number the variable may hold.
    pub(super) const fn range(self, min: u64, max: u64) -> Self {
        Self {
            range: Some(Range {
                min,
                max,
                unit: F::UNIT,
                number: F::number,
            }),
            ..self
        }
    }
}

const fn unset<T>() -> Option<T> {
    None
}

impl<F: Format> Setting<Option<F>> {
    /// A setting that may be unset; `when_unset` says what that means (Markdown).
    pub(super) const fn optional(when_unset: &'static str) -> Self {
        Self::new(unset::<F::Value>).default_doc(when_unset)
    }
}

/// What the documentation says about a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// The name.
    pub name: &'static str,
    /// What it sets, one line of Markdown.
    pub doc: &'static str,
    /// The default, Markdown.
    pub default: String,
    /// An example value.
    pub example: Option<&'static str>,
    /// The range, with its unit: `1 to 300 seconds`.
    pub range: Option<String>,
    /// A secret: it may also be given as a file, `{name}_FILE`, and is never printed.
    pub secret: bool,
    /// Who reads it.
    pub scope: Scope,
}

impl Description {
    /// What it sets, with who reads it, an example and the range (Markdown).
    pub fn meaning(&self) -> String {
        let mut out = String::new();
        if self.scope == Scope::Caller {
            out.push_str("`request` and `listen`: ");
        }
        out.push_str(self.doc);
        if let Some(example) = self.example {
            out.push_str(&format!(", e.g. `{example}`"));
        }
        if let Some(range) = &self.range {
            out.push_str(&format!("; {range}"));
        }
        out
    }
}

/// A declared variable, whatever its format: what `widget-sessions env` lists.
pub trait Variable {
    /// What the documentation says about it.
    fn describe(&self) -> Description;

    /// Whether its default passes its own range and rule.
    ///
    /// # Errors
    ///
    /// Why the default is refused.
    fn check_default(&self) -> Result<(), String>;
}

impl<F: Format> Variable for Setting<F> {
    fn describe(&self) -> Description {
        let default = match self.default_doc {
            Some(words) => words.to_string(),
            None if F::SECRET => "unset".to_string(),
            None => format!("`{}`", F::show(&self.default_value())),
        };
        Description {
            name: self.name,
            doc: self.doc,
            default,
            example: self.example,
            range: self.range.as_ref().map(|r| {
                format!("{} to {} {}", r.min, r.max, r.unit)
                    .trim_end()
                    .to_string()
            }),
            secret: F::SECRET,
            scope: self.scope,
        }
    }

    fn check_default(&self) -> Result<(), String> {
        self.check(&self.default_value())
    }
}

/// Reads variables only through their declarations, collecting every problem.
pub struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    problems: RefCell<Vec<String>>,
    read: RefCell<Vec<&'static str>>,
}

impl<'a> Reader<'a> {
    /// A reader of `vars`.
    pub fn new(vars: &'a HashMap<String, String>) -> Self {
        Self {
            vars,
            problems: RefCell::new(Vec::new()),
            read: RefCell::new(Vec::new()),
        }
    }

    /// Records a problem (once).
    pub fn problem(&self, problem: impl Into<String>) {
        let problem = problem.into();
        let mut problems = self.problems.borrow_mut();
        if !problems.contains(&problem) {
            problems.push(problem);
        }
    }

    /// The setting's value: its default when unset, and when refused (the refusal is a
    /// problem).
    pub fn value<F: Format>(&self, setting: &Setting<F>) -> F::Value {
        self.checked(setting)
            .unwrap_or_else(|| setting.default_value())
    }

    /// The setting's value (its default when unset); `None` when refused (the refusal is a
    /// problem). For checks across settings, which skip what was already refused.
    pub fn checked<F: Format>(&self, setting: &Setting<F>) -> Option<F::Value> {
        let name = setting.name;
        let text = match self.text(name, F::SECRET) {
            Err(()) => return None,
            Ok(None) => return Some(setting.default_value()),
            Ok(Some(text)) => text,
        };
        // A secret's value is never printed.
        let subject = if F::SECRET {
            name.to_string()
        } else {
            format!("{name}={text:?}")
        };
        let value = match F::parse(&text) {
            Ok(value) => value,
            Err(why) => {
                let example = match setting.example {
                    Some(example) if !why.contains(example) => format!(", e.g. {example}"),
                    _ => String::new(),
                };
                self.problem(format!("{subject}: {why}{example}"));
                return None;
            }
        };
        match setting.check(&value) {
            Ok(()) => Some(value),
            Err(why) => {
                self.problem(format!("{subject}: {why}"));
                None
            }
        }
    }

    /// Whether the variable is set (for a secret: it or its file), valid or not.
    pub fn is_set<F: Format>(&self, setting: &Setting<F>) -> bool {
        self.read.borrow_mut().push(setting.name);
        let set = |name: &str| self.vars.get(name).is_some_and(|v| !v.trim().is_empty());
        set(setting.name) || (F::SECRET && set(&format!("{}_FILE", setting.name)))
    }

    /// The trimmed, non-empty text of a variable; for a secret, `{name}_FILE` may name a
    /// file holding it instead. `Err` when that is a problem (recorded), so that a variable
    /// set either way has a value or a problem.
    fn text(&self, name: &'static str, secret: bool) -> Result<Option<String>, ()> {
        self.read.borrow_mut().push(name);
        let get = |name: &str| {
            self.vars
                .get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let direct = get(name);
        if !secret {
            return Ok(direct);
        }
        let file_var = format!("{name}_FILE");
        match (direct, get(&file_var)) {
            (Some(_), Some(_)) => {
                self.problem(format!("set {name} or {file_var}, not both"));
                Err(())
            }
            (Some(v), None) => Ok(Some(v)),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(text) if text.trim().is_empty() => {
                    self.problem(format!("{file_var}={path:?} is empty"));
                    Err(())
                }
                Ok(text) => Ok(Some(text.trim().to_string())),
                Err(e) => {
                    self.problem(format!("{file_var}={path:?} cannot be read: {e}"));
                    Err(())
                }
            },
            (None, None) => Ok(None),
        }
    }

    /// The names of the variables read so far.
    pub fn read(&self) -> Vec<&'static str> {
        self.read.borrow().clone()
    }

    /// `Ok` when no problem was found, otherwise every problem.
    ///
    /// # Errors
    ///
    /// Every problem recorded.
    pub fn finish(&self) -> Result<(), ConfigError> {
        let problems = self.problems.borrow().clone();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems))
        }
    }
}
