//! What the dispatcher needs to know of a command before it runs, said
//! once by each command's arguments (`Shape`) instead of matching command
//! names as strings: its name, the formats it prints, whether it talks to
//! a database, whether it takes `--fleet`.

use std::path::PathBuf;

use super::*;

/// A command's shape, implemented by its arguments.
pub trait Shape {
    /// The command's name: the subcommand, the JSON document's `command`,
    /// the audit row's.
    const NAME: &'static str;
    /// The formats it prints (text and JSON always).
    const FORMATS: &'static [Format] = &[Format::Text, Format::Json];
    /// Whether it takes `--fleet FILE` (then `--fleet` stands in for
    /// `--database-url`).
    const FLEET: bool = false;
    /// The output format asked for.
    fn format(&self) -> Format;
    /// The connection flags of a command that talks to a database.
    fn connect(&self) -> Option<&ConnectArgs> {
        None
    }
    /// `--fleet FILE`, when given.
    fn fleet(&self) -> Option<&PathBuf> {
        None
    }
    /// `--html FILE`, when given.
    fn html_file(&self) -> Option<&PathBuf> {
        None
    }
}

/// A parsed command's shape, as values.
#[derive(Debug, Clone, Copy)]
pub struct Info<'a> {
    pub name: &'static str,
    pub format: Format,
    pub formats: &'static [Format],
    pub connect: Option<&'a ConnectArgs>,
    /// `Some(given)` for a command that takes `--fleet`.
    pub fleet: Option<bool>,
    pub html_file: bool,
}

impl<'a> Info<'a> {
    fn of<S: Shape>(a: &'a S) -> Info<'a> {
        Info {
            name: S::NAME,
            format: a.format(),
            formats: S::FORMATS,
            connect: a.connect(),
            fleet: S::FLEET.then(|| a.fleet().is_some()),
            html_file: a.html_file().is_some(),
        }
    }

    /// Whether the command prints `format`.
    pub fn prints(&self, format: Format) -> bool {
        self.formats.contains(&format)
    }
}

/// The commands that print `format`, in the order the usage errors name them.
pub fn printing(format: Format) -> Vec<&'static str> {
    SHAPES.iter().filter(|(_, formats)| formats.contains(&format)).map(|(name, _)| *name).collect()
}

macro_rules! commands {
    ($($(#[$m:meta])* $variant:ident($args:ty)),* $(,)?) => {
        /// Every command's name and formats (in the order the usage errors
        /// list them).
        pub const SHAPES: &[(&str, &[Format])] = &[$($(#[$m])* (<$args as Shape>::NAME, <$args as Shape>::FORMATS)),*];

        impl Command {
            /// The parsed command's shape.
            pub fn info(&self) -> Info<'_> {
                match self {
                    $($(#[$m])* Command::$variant(a) => Info::of(a)),*
                }
            }
        }
    };
}

commands!(
    Lint(LintArgs),
    Verify(VerifyArgs),
    Migrate(MigrateArgs),
    Rollback(RollbackArgs),
    Validate(ValidateArgs),
    Recover(RecoverArgs),
    #[cfg(feature = "bench")]
    Bench(BenchArgs),
    Restore(RestoreArgs),
    Health(HealthArgs),
    Status(StatusArgs),
    Plan(PlanArgs),
    New(NewArgs),
    Init(InitArgs),
    Import(ImportArgs),
    Change(ChangeArgs),
    Snapshot(SnapshotArgs),
    History(HistoryArgs),
    Demo(DemoArgs),
);

const CI: &[Format] = &[Format::Text, Format::Json, Format::Github, Format::Markdown];
const CI_AND_HTML: &[Format] = &[Format::Text, Format::Json, Format::Github, Format::Markdown, Format::Html];
const HTML: &[Format] = &[Format::Text, Format::Json, Format::Html];

/// A command on a database: its name, its formats, `--fleet` or not,
/// `--html` or not.
macro_rules! on_database {
    ($args:ty, $name:literal $(, formats = $formats:expr)? $(, fleet = $fleet:ident)? $(, html = $html:ident)?) => {
        impl Shape for $args {
            const NAME: &'static str = $name;
            $(const FORMATS: &'static [Format] = $formats;)?
            fn format(&self) -> Format {
                self.connect.set.format
            }
            fn connect(&self) -> Option<&ConnectArgs> {
                Some(&self.connect)
            }
            $(
                const FLEET: bool = true;
                fn fleet(&self) -> Option<&PathBuf> {
                    self.$fleet.as_ref()
                }
            )?
            $(fn html_file(&self) -> Option<&PathBuf> {
                self.$html.html.as_ref()
            })?
        }
    };
}

/// A command on files (or a server of its own): its name and formats.
macro_rules! on_files {
    ($args:ty, $name:literal $(, formats = $formats:expr)? $(, html = $html:ident)?) => {
        impl Shape for $args {
            const NAME: &'static str = $name;
            $(const FORMATS: &'static [Format] = $formats;)?
            fn format(&self) -> Format {
                self.set.format
            }
            $(fn html_file(&self) -> Option<&PathBuf> {
                self.$html.html.as_ref()
            })?
        }
    };
}

on_database!(MigrateArgs, "migrate", formats = CI_AND_HTML, fleet = fleet, html = html);
on_database!(RollbackArgs, "rollback", formats = CI_AND_HTML, fleet = fleet, html = html);
on_database!(ValidateArgs, "validate", formats = CI, fleet = fleet);
on_database!(StatusArgs, "status", fleet = fleet);
on_database!(RecoverArgs, "recover", formats = HTML, html = html);
on_database!(RestoreArgs, "restore");
on_database!(HealthArgs, "health");
on_database!(SnapshotArgs, "snapshot");
on_database!(HistoryArgs, "history");
on_files!(LintArgs, "lint", formats = CI);
on_files!(VerifyArgs, "verify", formats = CI_AND_HTML, html = html);
#[cfg(feature = "bench")]
on_files!(BenchArgs, "bench", formats = HTML, html = html);
on_files!(PlanArgs, "plan");
on_files!(NewArgs, "new");
on_files!(InitArgs, "init");
on_files!(ImportArgs, "import");
on_files!(DemoArgs, "demo");

impl Shape for ChangeArgs {
    const NAME: &'static str = "change";
    fn format(&self) -> Format {
        self.op.common().set.format
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every subcommand has a shape, under the name clap gives it.
    #[test]
    fn every_subcommand_has_its_shape() {
        let mut clap_names: Vec<String> = command("phasegate").get_subcommands().map(|c| c.get_name().to_string()).filter(|n| n != "help").collect();
        let mut shapes: Vec<String> = SHAPES.iter().map(|(n, _)| n.to_string()).collect();
        clap_names.sort();
        shapes.sort();
        assert_eq!(clap_names, shapes);
        assert_eq!(printing(Format::Github), ["lint", "verify", "migrate", "rollback", "validate"]);
        let html: &[&str] = if cfg!(feature = "bench") { &["verify", "migrate", "rollback", "recover", "bench"] } else { &["verify", "migrate", "rollback", "recover"] };
        assert_eq!(printing(Format::Html), html);
    }
}
