//! Every problem code pm reports, in one table: the code a diagnostic
//! shows (`pm::run::lock`-style, as `area::what`), what `--log-format json`
//! writes, and what scripts may match on. A new problem adds its line here.

macro_rules! codes {
    ($($variant:ident = $text:literal,)*) => {
        /// A problem's code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            /// Every code, in the table's order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as shown: `area::what`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }
        }
    };
}

codes! {
    ArtifactsWrite = "artifacts::write",
    CitusConfig = "citus::config",
    CitusDetect = "citus::detect",
    CitusJoin = "citus::join",
    CleanDelete = "clean::delete",
    CleanOutside = "clean::outside",
    CliResourceType = "cli::resource_type",
    CliVars = "cli::vars",
    CompileAccess = "compile::access",
    CompileAmbiguousRef = "compile::ambiguous_ref",
    CompileConfigArgs = "compile::config_args",
    CompileConfigRequired = "compile::config_required",
    CompileConfigTemplate = "compile::config_template",
    CompileConfigType = "compile::config_type",
    CompileConfigUnsupported = "compile::config_unsupported",
    CompileDisabledRef = "compile::disabled_ref",
    CompileDispatch = "compile::dispatch",
    CompileHook = "compile::hook",
    CompileMaterialization = "compile::materialization",
    CompileMissingEnvVar = "compile::missing_env_var",
    CompileMissingVar = "compile::missing_var",
    CompileNaming = "compile::naming",
    CompileRaised = "compile::raised",
    CompileRefArgs = "compile::ref_args",
    CompileStatements = "compile::statements",
    CompileUnknownPackage = "compile::unknown_package",
    CompileUnknownRef = "compile::unknown_ref",
    CompileUnknownSource = "compile::unknown_source",
    CompileUnknownTest = "compile::unknown_test",
    CompileWhile = "compile::while",
    ConnectFailed = "connect::failed",
    ConnectLost = "connect::lost",
    ConnectPassfile = "connect::passfile",
    ConnectPool = "connect::pool",
    ConnectQuery = "connect::query",
    ConnectSslmode = "connect::sslmode",
    ConnectTimeout = "connect::timeout",
    ConnectTls = "connect::tls",
    ConnectUrl = "connect::url",
    ContractFailed = "contract::failed",
    ContractInvalid = "contract::invalid",
    DbCitusMissing = "db::citus_missing",
    DbPasswords = "db::passwords",
    DbReset = "db::reset",
    DbRole = "db::role",
    DbWorkers = "db::workers",
    DepsDuplicate = "deps::duplicate",
    DepsEntry = "deps::entry",
    DepsGit = "deps::git",
    DepsGitEntry = "deps::git_entry",
    DepsHub = "deps::hub",
    DepsIo = "deps::io",
    DepsLock = "deps::lock",
    DepsNotAProject = "deps::not_a_project",
    DepsUnsupported = "deps::unsupported",
    DepsVersion = "deps::version",
    DocsServe = "docs::serve",
    DocsWrite = "docs::write",
    EmbeddedAccess = "embedded::access",
    EmbeddedBin = "embedded::bin",
    EmbeddedConfig = "embedded::config",
    EmbeddedDir = "embedded::dir",
    EmbeddedInitdb = "embedded::initdb",
    EmbeddedReset = "embedded::reset",
    EmbeddedRoot = "embedded::root",
    EmbeddedSocketDir = "embedded::socket_dir",
    EmbeddedStart = "embedded::start",
    EmbeddedStop = "embedded::stop",
    EmbeddedWorkers = "embedded::workers",
    FreshnessConfig = "freshness::config",
    FreshnessQuery = "freshness::query",
    GenerateAppend = "generate::append",
    GenerateCommit = "generate::commit",
    GenerateDays = "generate::days",
    GenerateLoad = "generate::load",
    GenerateOut = "generate::out",
    GeneratePartitions = "generate::partitions",
    GeneratePublish = "generate::publish",
    GenerateScale = "generate::scale",
    GenerateSimulate = "generate::simulate",
    GenerateStart = "generate::start",
    GenerateState = "generate::state",
    GenerateWarehouse = "generate::warehouse",
    GraphCycle = "graph::cycle",
    GraphCycleMember = "graph::cycle_member",
    InitExists = "init::exists",
    InitName = "init::name",
    InitWrite = "init::write",
    JinjaOperator = "jinja::operator",
    JinjaRender = "jinja::render",
    JinjaSyntax = "jinja::syntax",
    JinjaUnclosedBlock = "jinja::unclosed_block",
    JinjaUndefined = "jinja::undefined",
    JinjaUnknownFilter = "jinja::unknown_filter",
    JinjaUnknownFunction = "jinja::unknown_function",
    JinjaUnknownMethod = "jinja::unknown_method",
    ProfileMissing = "profile::missing",
    ProfileNotFound = "profile::not_found",
    ProfileRead = "profile::read",
    ProfileRender = "profile::render",
    ProfileShape = "profile::shape",
    ProfileTarget = "profile::target",
    ProfileValue = "profile::value",
    ProjectCwd = "project::cwd",
    ProjectDbtVersion = "project::dbt_version",
    ProjectDuplicateDocs = "project::duplicate_docs",
    ProjectDuplicateMacro = "project::duplicate_macro",
    ProjectDuplicateName = "project::duplicate_name",
    ProjectDuplicatePatch = "project::duplicate_patch",
    ProjectDuplicateSource = "project::duplicate_source",
    ProjectDuplicateTest = "project::duplicate_test",
    ProjectDuplicateUnitTest = "project::duplicate_unit_test",
    ProjectName = "project::name",
    ProjectNameTooLong = "project::name_too_long",
    ProjectNotFound = "project::not_found",
    ProjectPackagesNotInstalled = "project::packages_not_installed",
    ProjectPaths = "project::paths",
    ProjectRead = "project::read",
    ProjectSameRelation = "project::same_relation",
    ProjectWalk = "project::walk",
    QueryFailed = "query::failed",
    ReportBadToken = "report::bad_token",
    ReportBadUrl = "report::bad_url",
    ReportChart = "report::chart",
    ReportColumn = "report::column",
    ReportConfig = "report::config",
    ReportDate = "report::date",
    ReportModel = "report::model",
    ReportNoAnswer = "report::no_answer",
    ReportNoCredentials = "report::no_credentials",
    ReportNoData = "report::no_data",
    ReportNone = "report::none",
    ReportNotBuilt = "report::not_built",
    ReportNotReady = "report::not_ready",
    ReportQuery = "report::query",
    ReportRateLimited = "report::rate_limited",
    ReportRefused = "report::refused",
    ReportServerError = "report::server_error",
    ReportTimeout = "report::timeout",
    ReportTimezone = "report::timezone",
    ReportTooLong = "report::too_long",
    ReportUnfinished = "report::unfinished",
    ReportUnknown = "report::unknown",
    ReportUnreachable = "report::unreachable",
    RetryCommand = "retry::command",
    RetryNoResults = "retry::no_results",
    RunCatalog = "run::catalog",
    RunDatabase = "run::database",
    RunDependent = "run::dependent",
    RunGrants = "run::grants",
    RunHook = "run::hook",
    RunIncrementalConfig = "run::incremental_config",
    RunInterrupted = "run::interrupted",
    RunLeftovers = "run::leftovers",
    RunLock = "run::lock",
    RunLocked = "run::locked",
    RunMaterialization = "run::materialization",
    RunOnRunHook = "run::on_run_hook",
    RunOperationArgs = "run_operation::args",
    RunOperationStopped = "run_operation::stopped",
    RunOperationUnknownMacro = "run_operation::unknown_macro",
    RunRender = "run::render",
    RunRenderQuery = "run::render_query",
    RunRetention = "run::retention",
    RunSchema = "run::schema",
    RunSchemaChange = "run::schema_change",
    RunStatement = "run::statement",
    RunTempName = "run::temp_name",
    RunUniqueKey = "run::unique_key",
    RunUnseenDependency = "run::unseen_dependency",
    RuntimeStart = "runtime::start",
    SeedCheck = "seed::check",
    SeedCsv = "seed::csv",
    SeedDependents = "seed::dependents",
    SeedLoad = "seed::load",
    SeedRead = "seed::read",
    SelectorMethod = "selector::method",
    SelectorState = "selector::state",
    SelectorSyntax = "selector::syntax",
    SelectorUnknown = "selector::unknown",
    SelectorValue = "selector::value",
    SelectorYml = "selector::yml",
    SemanticDefinition = "semantic::definition",
    SemanticQuery = "semantic::query",
    SemanticReference = "semantic::reference",
    ServeBind = "serve::bind",
    ServeConfig = "serve::config",
    ServeKey = "serve::key",
    ServeToken = "serve::token",
    ShowNone = "show::none",
    ShowNothing = "show::nothing",
    ShowQuery = "show::query",
    ShowSeveral = "show::several",
    ShowStopped = "show::stopped",
    SnapshotConfig = "snapshot::config",
    StateParse = "state::parse",
    StateRead = "state::read",
    TestDatabase = "test::database",
    TestFailCalc = "test::fail_calc",
    TestSeverity = "test::severity",
    UnitTestCsv = "unit_test::csv",
    UnitTestDatabase = "unit_test::database",
    UnitTestDuplicateInput = "unit_test::duplicate_input",
    UnitTestFixture = "unit_test::fixture",
    UnitTestFixtureFile = "unit_test::fixture_file",
    UnitTestInput = "unit_test::input",
    UnitTestInputRelation = "unit_test::input_relation",
    UnitTestMissingInput = "unit_test::missing_input",
    UnitTestModel = "unit_test::model",
    UnitTestNoRows = "unit_test::no_rows",
    UnitTestNode = "unit_test::node",
    UnitTestSeedRows = "unit_test::seed_rows",
    UnitTestUnknownInput = "unit_test::unknown_input",
    UnitTestUnknownModel = "unit_test::unknown_model",
    UnitTestVersions = "unit_test::versions",
    YamlDuplicateKey = "yaml::duplicate_key",
    YamlMerge = "yaml::merge",
    YamlProperties = "yaml::properties",
    YamlSyntax = "yaml::syntax",
    YamlTest = "yaml::test",
    YamlTestArguments = "yaml::test_arguments",
    YamlUnitTest = "yaml::unit_test",
    YamlUnknownDoc = "yaml::unknown_doc",
    YamlValue = "yaml::value",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn codes_are_area_and_what_and_each_is_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            let text = code.as_str();
            let (area, what) = text.split_once("::").expect("area::what");
            assert!(!area.is_empty() && !what.is_empty(), "{text}");
            assert!(
                text.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == ':'),
                "{text}"
            );
            assert!(seen.insert(text), "{text} twice");
        }
    }
}
