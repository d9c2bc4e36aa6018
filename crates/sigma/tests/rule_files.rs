//! Which files a rule path names.

use std::path::Path;

use towerwatch_sigma::rule_files;

fn touch(p: &Path) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, "title: t\n").unwrap();
}

#[test]
fn rule_dirs_are_walked_in_order_through_symlinks_and_loops_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    touch(&real.join("b/rule2.yml"));
    touch(&real.join("a/rule1.yaml"));
    touch(&real.join("a/notes.txt"));
    let set = tmp.path().join("set");
    std::fs::create_dir(&set).unwrap();
    std::os::unix::fs::symlink(&real, set.join("linked")).unwrap();
    // A link back up the tree must not loop forever.
    std::os::unix::fs::symlink(&set, set.join("loop")).unwrap();
    let names: Vec<String> = rule_files(&set)
        .iter()
        .map(|p| p.strip_prefix(&set).unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["linked/a/rule1.yaml", "linked/b/rule2.yml"]);
    // A file names itself.
    let one = real.join("b/rule2.yml");
    assert_eq!(rule_files(&one), std::slice::from_ref(&one));
}

#[test]
fn refusals_point_at_the_line_and_column() {
    let text = "# a comment\n---\ntitle: fine\nlogsource: {product: windows, service: security}\ndetection: {sel: {EventID: 1}, condition: sel}\n---\ntitle: bad modifier\nlogsource: {product: windows, service: security}\ndetection: {sel: {Image|nonsense: x}, condition: sel}\n---\ntitle: broken\ndetection: {sel: [unclosed\n";
    let mut set = towerwatch_sigma::LoadReport::default();
    set.add_text(text, "rules/r.yml");
    assert_eq!(set.rules.len(), 1);
    let at: Vec<String> = set.refused.iter().map(|e| e.at()).collect();
    // The unknown modifier is named on line 9; the YAML error is in the third document, on
    // line 12 or at the end of the text.
    assert_eq!(at[0], "rules/r.yml#1:9:25", "{:?}", set.refused);
    let yaml = &set.refused[1];
    assert!(yaml.reason.starts_with("YAML"), "{yaml:?}");
    assert!(yaml.line.unwrap() >= 12, "{yaml:?}");
    assert!(yaml.to_string().starts_with(&format!("{}: ", yaml.at())));
}
