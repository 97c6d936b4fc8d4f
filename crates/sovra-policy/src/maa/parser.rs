//! The MAA policy grammar, parsed into an AST.
//!
//! ```text
//! policy     := "version" "=" VERSION ";" section*
//! section    := ("configurationrules" | "authorizationrules" | "issuancerules") "{" rule* "}" [";"]
//! rule       := [condition ("&&" condition)*] "=>" action ";"
//! condition  := ["!"] [IDENT ":"] "[" test ("," test)* "]"
//! test       := ("type" | "value" | "issuer" | "valueType") OP operand
//! action     := permit() | deny() | add(…) | issue(…) | issueproperty(…)
//! expr       := STRING | INT | true | false | IDENT "." prop | FUNC "(" expr ("," expr)* ")"
//! ```

use super::lexer::{Spanned, Tok};
use crate::error::PolicyError;
use crate::limits::{MAX_ARGS, MAX_CONDITIONS, MAX_DEPTH, MAX_RULES};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A property of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prop {
    /// The claim type (name).
    Type,
    /// The claim value.
    Value,
    /// Who issued the claim (`AttestationService`, `AttestationPolicy`, `CustomClaim`).
    Issuer,
    /// The JSON type of the value (`String`, `Integer`, `Boolean`, `Object`, `Array`).
    ValueType,
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Lit(serde_json::Value),
    /// A property of a claim bound by a condition (`c.value`).
    Ref(String, Prop),
    /// A function call (MAA 1.2 functions).
    Call(String, Vec<Expr>),
}

/// One test inside a condition's brackets.
#[derive(Debug, Clone, PartialEq)]
pub struct Test {
    /// Which property.
    pub prop: Prop,
    /// The operator.
    pub op: Op,
    /// The right-hand side.
    pub rhs: Expr,
}

/// A condition: some claim satisfies every test (or, negated, none does).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// `!` in front.
    pub negated: bool,
    /// The identifier the matching claim is bound to.
    pub bind: Option<String>,
    /// The tests.
    pub tests: Vec<Test>,
}

/// An action.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `permit()`
    Permit,
    /// `deny()`
    Deny,
    /// `add(type=…, value=…)`: into the incoming set only.
    Add(Expr, Expr),
    /// `issue(type=…, value=…)`: into the incoming set and the token.
    Issue(Expr, Expr),
    /// `add(claim=c)`
    AddClaim(String),
    /// `issue(claim=c)`
    IssueClaim(String),
    /// `issueproperty(type=…, value=…)`
    IssueProperty(Expr, Expr),
}

/// A rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Conditions joined by `&&`.
    pub conditions: Vec<Condition>,
    /// What happens when they hold.
    pub action: Action,
    /// Line of the rule, for messages.
    pub line: usize,
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ast {
    /// The declared version (`1.0`, `1.1`, `1.2`).
    pub version: String,
    /// `configurationrules`.
    pub configuration: Vec<Rule>,
    /// `authorizationrules`.
    pub authorization: Vec<Rule>,
    /// `issuancerules`.
    pub issuance: Vec<Rule>,
}

struct P<'a> {
    toks: &'a [Spanned],
    i: usize,
    /// Function calls open around the expression being parsed.
    depth: usize,
    /// Rules parsed so far.
    rules: usize,
}

fn too_many(what: &'static str, limit: usize) -> PolicyError {
    PolicyError::TooLarge { what, limit }
}

impl P<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|s| &s.tok)
    }

    fn pos(&self) -> (usize, usize) {
        match self.toks.get(self.i).or(self.toks.last()) {
            Some(s) => (s.line, s.col),
            None => (1, 1),
        }
    }

    fn err<T>(&self, msg: impl Into<String>) -> Result<T, PolicyError> {
        let (line, col) = self.pos();
        Err(PolicyError::Syntax {
            line,
            col,
            msg: msg.into(),
        })
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.i).map(|s| s.tok.clone());
        self.i += 1;
        t
    }

    fn punct(&mut self, p: &'static str) -> Result<(), PolicyError> {
        if self.peek() == Some(&Tok::Punct(p)) {
            self.i += 1;
            Ok(())
        } else {
            self.err(format!("expected '{p}', found {}", self.describe()))
        }
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
    }

    fn describe(&self) -> String {
        match self.peek() {
            None => "end of policy".into(),
            Some(Tok::Ident(s)) => format!("'{s}'"),
            Some(Tok::Str(s)) => format!("string \"{s}\""),
            Some(Tok::Int(n)) => format!("number {n}"),
            Some(Tok::Version(v)) => format!("number {v}"),
            Some(Tok::Punct(p)) => format!("'{p}'"),
        }
    }

    fn ident(&mut self) -> Result<String, PolicyError> {
        match self.peek() {
            Some(Tok::Ident(s)) => {
                let s = s.clone();
                self.i += 1;
                Ok(s)
            }
            _ => self.err(format!("expected a name, found {}", self.describe())),
        }
    }

    fn policy(&mut self) -> Result<Ast, PolicyError> {
        let mut ast = Ast::default();
        if !self.ident()?.eq_ignore_ascii_case("version") {
            self.i = self.i.saturating_sub(1);
            return self.err("a policy starts with version=1.0; (or 1.1, 1.2)");
        }
        self.punct("=")?;
        ast.version = match self.next() {
            Some(Tok::Version(v)) if ["1.0", "1.1", "1.2"].contains(&v.as_str()) => v,
            _ => {
                self.i = self.i.saturating_sub(1);
                return self.err("version must be 1.0, 1.1 or 1.2");
            }
        };
        self.punct(";")?;
        while self.peek().is_some() {
            let (line, col) = self.pos();
            let name = self.ident()?.to_ascii_lowercase();
            self.punct("{")?;
            let mut rules = Vec::new();
            while !self.is_punct("}") {
                if self.peek().is_none() {
                    return self.err(format!("section {name} is not closed with '}}'"));
                }
                self.rules += 1;
                if self.rules > MAX_RULES {
                    return Err(too_many("rules", MAX_RULES));
                }
                rules.push(self.rule()?);
            }
            self.punct("}")?;
            if self.is_punct(";") {
                self.i += 1;
            }
            let slot = match name.as_str() {
                "configurationrules" if ast.version == "1.2" => &mut ast.configuration,
                "configurationrules" => {
                    return Err(PolicyError::Syntax {
                        line,
                        col,
                        msg: "configurationrules need version=1.2".into(),
                    });
                }
                "authorizationrules" => &mut ast.authorization,
                "issuancerules" => &mut ast.issuance,
                other => {
                    return Err(PolicyError::Syntax {
                        line,
                        col,
                        msg: format!(
                            "unknown section '{other}'; expected configurationrules, authorizationrules or issuancerules"
                        ),
                    });
                }
            };
            slot.extend(rules);
        }
        Ok(ast)
    }

    fn rule(&mut self) -> Result<Rule, PolicyError> {
        let (line, _) = self.pos();
        let mut conditions = Vec::new();
        if !self.is_punct("=>") {
            conditions.push(self.condition()?);
            while self.is_punct("&&") {
                self.i += 1;
                if conditions.len() >= MAX_CONDITIONS {
                    return Err(too_many("conditions in one rule", MAX_CONDITIONS));
                }
                conditions.push(self.condition()?);
            }
        }
        self.punct("=>")?;
        let action = self.action()?;
        self.punct(";")?;
        Ok(Rule {
            conditions,
            action,
            line,
        })
    }

    fn condition(&mut self) -> Result<Condition, PolicyError> {
        let negated = self.is_punct("!");
        if negated {
            self.i += 1;
        }
        let bind = if let Some(Tok::Ident(_)) = self.peek() {
            let b = self.ident()?;
            self.punct(":")?;
            Some(b)
        } else {
            None
        };
        self.punct("[")?;
        let mut tests = vec![self.test()?];
        while self.is_punct(",") {
            self.i += 1;
            if tests.len() >= MAX_CONDITIONS {
                return Err(too_many("tests in one condition", MAX_CONDITIONS));
            }
            tests.push(self.test()?);
        }
        self.punct("]")?;
        Ok(Condition {
            negated,
            bind,
            tests,
        })
    }

    fn prop(name: &str) -> Option<Prop> {
        match name.to_ascii_lowercase().as_str() {
            "type" => Some(Prop::Type),
            "value" => Some(Prop::Value),
            "issuer" => Some(Prop::Issuer),
            "valuetype" => Some(Prop::ValueType),
            _ => None,
        }
    }

    fn test(&mut self) -> Result<Test, PolicyError> {
        let name = self.ident()?;
        let Some(prop) = Self::prop(&name) else {
            self.i -= 1;
            return self.err(format!(
                "'{name}' is not a claim property; use type, value, issuer or valueType"
            ));
        };
        let op = match self.next() {
            Some(Tok::Punct("==")) => Op::Eq,
            Some(Tok::Punct("!=")) => Op::Ne,
            Some(Tok::Punct("<")) => Op::Lt,
            Some(Tok::Punct("<=")) => Op::Le,
            Some(Tok::Punct(">")) => Op::Gt,
            Some(Tok::Punct(">=")) => Op::Ge,
            _ => {
                self.i -= 1;
                return self.err(format!(
                    "expected a comparison (==, !=, <, <=, >, >=), found {}",
                    self.describe()
                ));
            }
        };
        Ok(Test {
            prop,
            op,
            rhs: self.expr()?,
        })
    }

    fn expr(&mut self) -> Result<Expr, PolicyError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Expr::Lit(serde_json::Value::from(s))),
            Some(Tok::Int(n)) => Ok(Expr::Lit(serde_json::Value::from(n))),
            Some(Tok::Ident(id)) => match id.as_str() {
                "true" | "True" => Ok(Expr::Lit(serde_json::Value::Bool(true))),
                "false" | "False" => Ok(Expr::Lit(serde_json::Value::Bool(false))),
                _ if self.is_punct(".") => {
                    self.i += 1;
                    let p = self.ident()?;
                    match Self::prop(&p) {
                        Some(prop) => Ok(Expr::Ref(id, prop)),
                        None => {
                            self.i -= 1;
                            self.err(format!("'{p}' is not a claim property"))
                        }
                    }
                }
                _ if self.is_punct("(") => {
                    // The parser recurses here: bound the depth before going deeper.
                    if self.depth >= MAX_DEPTH {
                        return Err(PolicyError::TooDeep {
                            limit: MAX_DEPTH,
                            line: self.pos().0,
                        });
                    }
                    self.i += 1;
                    self.depth += 1;
                    let mut args = Vec::new();
                    if !self.is_punct(")") {
                        args.push(self.expr()?);
                        while self.is_punct(",") {
                            self.i += 1;
                            if args.len() >= MAX_ARGS {
                                return Err(too_many("arguments in one call", MAX_ARGS));
                            }
                            args.push(self.expr()?);
                        }
                    }
                    self.punct(")")?;
                    self.depth -= 1;
                    Ok(Expr::Call(id, args))
                }
                _ => {
                    self.i -= 1;
                    self.err(format!(
                        "'{id}' is not a value; write a string, number, true, false, or c.value"
                    ))
                }
            },
            _ => {
                self.i -= 1;
                self.err(format!("expected a value, found {}", self.describe()))
            }
        }
    }

    /// `name = expr` argument.
    fn named(&mut self, want: &str) -> Result<Expr, PolicyError> {
        let n = self.ident()?;
        if !n.eq_ignore_ascii_case(want) {
            self.i -= 1;
            return self.err(format!("expected '{want}=', found '{n}'"));
        }
        self.punct("=")?;
        self.expr()
    }

    fn action(&mut self) -> Result<Action, PolicyError> {
        let name = self.ident()?.to_ascii_lowercase();
        self.punct("(")?;
        let a = match name.as_str() {
            "permit" => Action::Permit,
            "deny" => Action::Deny,
            "add" | "issue" | "issueproperty" => {
                let is_claim =
                    matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("claim"));
                if is_claim && name != "issueproperty" {
                    self.i += 1;
                    self.punct("=")?;
                    let c = self.ident()?;
                    if name == "add" {
                        Action::AddClaim(c)
                    } else {
                        Action::IssueClaim(c)
                    }
                } else {
                    let t = self.named("type")?;
                    self.punct(",")?;
                    let v = self.named("value")?;
                    match name.as_str() {
                        "add" => Action::Add(t, v),
                        "issue" => Action::Issue(t, v),
                        _ => Action::IssueProperty(t, v),
                    }
                }
            }
            other => {
                self.i -= 2;
                return self.err(format!("unknown action '{other}'; use permit(), deny(), add(), issue() or issueproperty()"));
            }
        };
        self.punct(")")?;
        Ok(a)
    }
}

/// Parses tokens into an AST.
pub fn parse(toks: &[Spanned]) -> Result<Ast, PolicyError> {
    let mut p = P {
        toks,
        i: 0,
        depth: 0,
        rules: 0,
    };
    let ast = p.policy()?;
    for r in &ast.issuance {
        if matches!(r.action, Action::Permit | Action::Deny) {
            return Err(PolicyError::Invalid(format!(
                "line {}: permit() and deny() belong in authorizationrules",
                r.line
            )));
        }
    }
    for r in &ast.authorization {
        if !matches!(r.action, Action::Permit | Action::Deny) {
            return Err(PolicyError::Invalid(format!(
                "line {}: authorizationrules may only permit() or deny()",
                r.line
            )));
        }
    }
    if ast.version != "1.2" {
        let uses_12 = ast
            .authorization
            .iter()
            .chain(&ast.issuance)
            .any(|r| r.conditions.iter().any(|c| c.negated));
        if uses_12 {
            return Err(PolicyError::Invalid(
                "the '!' operator needs version=1.2".into(),
            ));
        }
    }
    Ok(ast)
}
