//! `export registry-v2` and `import registry-v2`: the limits as Registry v2 `LimitRange`
//! and `ResourceQuota` objects and back (limits-core does the translation; this reads files and the catalog).

use anyhow::Context;
use limits_core::import_registry_v2;
use upstream_client::{Auth, Credentials, Inventory, ReqwestUpstream};

use crate::cli::{ExportArgs, ExportTarget, ImportSource};
use crate::config_source;

/// `export registry-v2`: prints the LimitRange objects on standard output.
pub fn export(target: ExportTarget) -> anyhow::Result<()> {
    let ExportTarget::RegistryV2(args) = target;
    let policy = config_source::load(&args.config)?;
    let (namespaces, note) = namespaces(&args, &policy)?;
    print!(
        "# Namespaces: {note}.\n{}",
        policy.export_registry_v2(&namespaces)
    );
    Ok(())
}

/// The namespaces to export, and where they came from.
fn namespaces(
    args: &ExportArgs,
    policy: &limits_core::Policy,
) -> anyhow::Result<(Vec<String>, String)> {
    if !args.namespaces.is_empty() {
        // In the order given, each once.
        let mut namespaces: Vec<String> = Vec::new();
        for namespace in args.namespaces.iter().map(|n| n.trim()) {
            if !namespace.is_empty() && !namespaces.iter().any(|n| n == namespace) {
                namespaces.push(namespace.to_owned());
            }
        }
        return Ok((namespaces, "given with --namespaces".to_owned()));
    }
    let Some(upstream) = &args.upstream else {
        return Ok((
            policy.rule_namespaces(),
            "those the rules name (give --namespaces or --upstream for every namespace in use)"
                .to_owned(),
        ));
    };
    let mut builder = ReqwestUpstream::builder(upstream.clone());
    if let (Some(username), Some(password)) = (&args.username, &args.password) {
        builder = builder.credentials(Credentials::new(username.clone(), password.clone()));
    }
    let client = builder.build().context("invalid --upstream")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let repositories = runtime
        .block_on(client.catalog(Auth::Configured))
        .context("cannot read the registry's catalog")?;
    let mut namespaces: Vec<String> = repositories
        .iter()
        .filter_map(|r| r.split_once('/').map(|(ns, _)| ns.to_owned()))
        .collect();
    namespaces.sort();
    namespaces.dedup();
    let mut note = format!(
        "from the catalog of {upstream} ({} repositories)",
        repositories.len()
    );
    let bare: Vec<&str> = repositories
        .iter()
        .filter(|r| !r.contains('/'))
        .map(String::as_str)
        .collect();
    if !bare.is_empty() {
        note.push_str(&format!(
            "; INEXACT: repositories without a namespace get no LimitRange: {}",
            bare.join(", ")
        ));
    }
    Ok((namespaces, note))
}

/// `import registry-v2`: prints the configuration on standard output.
pub fn import(source: ImportSource) -> anyhow::Result<()> {
    let ImportSource::RegistryV2 { files } = source;
    let mut texts = Vec::with_capacity(files.len());
    for file in &files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        texts.push(text);
    }
    let imported = import_registry_v2(texts.iter().map(String::as_str))?;
    println!(
        "# Imported from Registry v2 LimitRange and ResourceQuota objects: one rule and one namespace quota per namespace."
    );
    println!(
        "# Registry v2 has no global limits: repositories outside these namespaces are unlimited."
    );
    for skipped in &imported.skipped {
        println!("# Not imported: {skipped}");
    }
    print!("{}", imported.config.to_yaml());
    Ok(())
}
