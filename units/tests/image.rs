//! `[container] image`: its syntax, and what it makes optional (`rootfs`, `[service]`,
//! `service.command`); the image store itself is runtime state, unknown to `check`.

use kennel_units::{parse_unit, ImageRef, Unit};
use std::path::Path;

fn parse(text: &str) -> Result<Unit, Vec<String>> {
    parse_unit("web", Path::new("u/web.toml"), text)
        .map_err(|d| d.iter().map(ToString::to_string).collect())
}

#[test]
fn an_image_makes_command_rootfs_and_service_optional() {
    let u = parse("[container]\nimage = \"web:1\"\n").unwrap();
    let c = u.container.unwrap();
    assert_eq!(c.image, Some(ImageRef::parse("web:1").unwrap()));
    assert!(c.rootfs.is_empty());
    assert!(u.service.command.is_empty());

    let u = parse("[service]\nuser = \"nobody\"\n[container]\nimage = \"library/debian\"\nrootfs = [\"site\"]\n").unwrap();
    let c = u.container.unwrap();
    assert_eq!(c.image.unwrap().to_string(), "library/debian:latest");
    assert_eq!(c.rootfs.len(), 1);

    let u = parse(
        "[service]\ncommand = [\"/bin/true\"]\n[container]\nimage = \"web:1\"\nrootfs = []\n",
    )
    .unwrap();
    assert_eq!(u.service.command, ["/bin/true"]);
}

#[test]
fn without_an_image_command_and_rootfs_stay_required() {
    assert_eq!(
        parse("[service]\nuser = \"x\"\n[container]\nrootfs = [\"busybox\"]\n").unwrap_err(),
        ["u/web.toml:1:1: service.command is required"]
    );
    assert_eq!(
        parse("[container]\nrootfs = [\"busybox\"]\n").unwrap_err(),
        ["u/web.toml:1:1: [service] is required"]
    );
}

#[test]
fn invalid_images_are_reported_where_they_are() {
    let e = parse("[container]\nimage = \"web:\"\n").unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("u/web.toml:2:9: container.image: invalid image \"web:\""),
        "{e:?}"
    );
    let e = parse("[container]\nimage = 3\n").unwrap_err();
    assert!(
        e[0].contains("container.image: expected an image such as \"web:1\""),
        "{e:?}"
    );
}
