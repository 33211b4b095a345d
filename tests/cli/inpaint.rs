//! `image-layered inpaint IN --mask M -o OUT`: the studio's fill on files, no models, no
//! store — known pixels kept, the hole continued, clear errors for a bad mask.

use crate::support::*;

fn stripes(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, _| {
        if (x / 6) % 2 == 0 {
            image::Rgb([220, 40, 30])
        } else {
            image::Rgb([20, 60, 200])
        }
    })
}

#[test]
fn inpaint_fills_the_mask_and_keeps_everything_else() {
    let env = Env::new();
    let dir = env.root.path();
    let img = stripes(160, 120);
    img.save(dir.join("in.png")).unwrap();
    // a white square on black, given at half size: scaled to the image
    let mask = image::GrayImage::from_fn(80, 60, |x, y| {
        image::Luma([if (30..50).contains(&x) && (20..40).contains(&y) {
            255
        } else {
            0
        }])
    });
    mask.save(dir.join("mask.png")).unwrap();
    let out = dir.join("out.png");
    for method in ["patchmatch", "diffusion"] {
        let run = env.run(&[
            "inpaint",
            dir.join("in.png").to_str().unwrap(),
            "--mask",
            dir.join("mask.png").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--method",
            method,
        ]);
        assert!(
            run.ok().contains("filled 1600 pixels"),
            "{}",
            run.describe()
        );
        let filled = image::open(&out).unwrap().to_rgb8();
        assert_eq!(filled.dimensions(), (160, 120));
        let mut err = 0u64;
        for (x, y, p) in filled.enumerate_pixels() {
            let inside = (60..100).contains(&x) && (40..80).contains(&y);
            if inside {
                err += (0..3)
                    .map(|c| u64::from(p[c].abs_diff(img.get_pixel(x, y)[c])))
                    .sum::<u64>();
            } else {
                assert_eq!(p, img.get_pixel(x, y), "{method}: ({x}, {y}) changed");
            }
        }
        let l1 = err as f64 / (1600.0 * 3.0);
        if method == "patchmatch" {
            assert!(l1 < 10.0, "stripes continued: L1 {l1:.1}");
        }
    }
}

#[test]
fn inpaint_refuses_an_empty_or_unreadable_mask() {
    let env = Env::new();
    let dir = env.root.path();
    stripes(40, 30).save(dir.join("in.png")).unwrap();
    image::GrayImage::new(40, 30)
        .save(dir.join("black.png"))
        .unwrap();
    std::fs::write(dir.join("junk.png"), b"not an image").unwrap();
    for (mask, says) in [("black.png", "marks no pixel"), ("junk.png", "junk.png")] {
        let run = env.run(&[
            "inpaint",
            dir.join("in.png").to_str().unwrap(),
            "--mask",
            dir.join(mask).to_str().unwrap(),
            "-o",
            dir.join("out.png").to_str().unwrap(),
        ]);
        assert_eq!(run.code, Some(2), "{}", run.describe());
        assert!(run.stderr.contains(says), "{}", run.describe());
        assert!(!dir.join("out.png").exists());
    }
}

#[test]
fn a_layer_with_transparency_is_filled_as_a_layer_from_what_it_shows() {
    let env = Env::new();
    let dir = env.root.path();
    // red stripes on a disc of radius 40, transparent around it with green junk under alpha 0
    let inside = |x: u32, y: u32| {
        let (dx, dy) = (f64::from(x) - 80.0, f64::from(y) - 60.0);
        dx * dx + dy * dy <= 1600.0
    };
    let layer = image::RgbaImage::from_fn(160, 120, |x, y| {
        if inside(x, y) {
            image::Rgba([200 + 40 * u8::from((y / 4) % 2 == 0), 30, 20, 255])
        } else {
            image::Rgba([0, 255, 0, 0])
        }
    });
    layer.save(dir.join("layer.png")).unwrap();
    // a brush across the disc's right rim
    let mask = image::GrayImage::from_fn(160, 120, |x, y| {
        image::Luma([255 * u8::from((104..132).contains(&x) && (46..74).contains(&y))])
    });
    mask.save(dir.join("mask.png")).unwrap();
    let out = dir.join("out.png");
    let run = env.run(&[
        "inpaint",
        dir.join("layer.png").to_str().unwrap(),
        "--mask",
        dir.join("mask.png").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(run.ok().contains("filled 784 pixels"), "{}", run.describe());
    let filled = image::open(&out).unwrap();
    assert!(filled.color().has_alpha(), "written with its alpha");
    let filled = filled.to_rgba8();
    for (x, y, p) in filled.enumerate_pixels() {
        if mask.get_pixel(x, y)[0] == 0 {
            assert_eq!(p, layer.get_pixel(x, y), "({x}, {y}) changed");
            continue;
        }
        let (dx, dy) = (f64::from(x) - 80.0, f64::from(y) - 60.0);
        let r = (dx * dx + dy * dy).sqrt();
        // the silhouette crosses the hole about as the chord of the rim (under 3 px off it)
        if r < 36.0 {
            // inside the disc: opaque, and the disc's red, not the junk under transparency
            assert_eq!(p[3], 255, "({x}, {y}) opaque");
            assert!(p[0] > 150 && p[1] < 90, "({x}, {y}) is {p:?}");
        } else if r > 44.0 {
            assert_eq!(p[3], 0, "({x}, {y}) clear");
        }
    }
}
