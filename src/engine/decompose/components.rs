//! Splitting a foreground matte into objects: 8-connected components of the solid part
//! (alpha ≥ 0.5) become objects; the soft edge pixels around them join the nearest object
//! by a breadth-first growth; components smaller than a speck are left in the background.

use std::collections::VecDeque;

/// One object's alpha over the whole canvas (zero outside it).
#[derive(Debug, Clone)]
pub struct Component {
    pub alpha: Vec<f32>,
    /// Sum of alpha (the object's "mass").
    pub mass: f32,
    /// `[x, y, w, h]`.
    pub bbox: [u32; 4],
}

impl Component {
    /// The component whose alpha over a `w`-wide canvas is `alpha`: its mass, and the box
    /// of its pixels with alpha > 0 (empty at the origin when there are none).
    pub fn from_alpha(alpha: Vec<f32>, w: usize) -> Self {
        let mass = alpha.iter().filter(|a| **a > 0.0).sum();
        let bbox = alpha_bbox(&alpha, w);
        Component { alpha, mass, bbox }
    }
}

/// `[x, y, w, h]` of the pixels with alpha > 0 of `alpha` over a `w`-wide canvas (all zeros
/// when there are none).
pub fn alpha_bbox(alpha: &[f32], w: usize) -> [u32; 4] {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (i, _) in alpha.iter().enumerate().filter(|(_, a)| **a > 0.0) {
        let (x, y) = (i % w, i / w);
        (x0, y0) = (x0.min(x), y0.min(y));
        (x1, y1) = (x1.max(x + 1), y1.max(y + 1));
    }
    if x1 == 0 {
        [0; 4]
    } else {
        [x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32]
    }
}

/// Splits `alpha` (w×h, 0..1) into objects; components with fewer than `min_area` solid pixels
/// are specks and are dropped. Soft pixels (alpha > `soft`) attach to the nearest component.
pub fn split(alpha: &[f32], w: usize, h: usize, min_area: usize, soft: f32) -> Vec<Component> {
    let n = w * h;
    let mut label = vec![u32::MAX; n];
    let mut sizes = Vec::new();
    let mut queue = VecDeque::new();
    for start in 0..n {
        if alpha[start] < 0.5 || label[start] != u32::MAX {
            continue;
        }
        let id = sizes.len() as u32;
        let mut size = 0usize;
        label[start] = id;
        queue.push_back(start);
        while let Some(i) = queue.pop_front() {
            size += 1;
            let (x, y) = ((i % w) as i64, (i / w) as i64);
            for dy in -1..=1i64 {
                for dx in -1..=1i64 {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if label[j] == u32::MAX && alpha[j] >= 0.5 {
                        label[j] = id;
                        queue.push_back(j);
                    }
                }
            }
        }
        sizes.push(size);
    }
    // drop specks
    let keep: Vec<bool> = sizes.iter().map(|&s| s >= min_area).collect();
    for l in label.iter_mut() {
        if *l != u32::MAX && !keep[*l as usize] {
            *l = u32::MAX;
        }
    }
    // grow labels into the soft band
    let mut queue: VecDeque<usize> = (0..n).filter(|&i| label[i] != u32::MAX).collect();
    while let Some(i) = queue.pop_front() {
        let (x, y) = (i % w, i / w);
        let l = label[i];
        let mut visit = |j: usize| {
            if label[j] == u32::MAX && alpha[j] > soft {
                label[j] = l;
                queue.push_back(j);
            }
        };
        if x > 0 {
            visit(i - 1);
        }
        if x + 1 < w {
            visit(i + 1);
        }
        if y > 0 {
            visit(i - w);
        }
        if y + 1 < h {
            visit(i + w);
        }
    }
    let mut comps: Vec<Option<Component>> = (0..sizes.len()).map(|_| None).collect();
    for i in 0..n {
        let l = label[i];
        if l == u32::MAX {
            continue;
        }
        let c = comps[l as usize].get_or_insert_with(|| Component {
            alpha: vec![0.0; n],
            mass: 0.0,
            bbox: [u32::MAX, u32::MAX, 0, 0],
        });
        c.alpha[i] = alpha[i];
        c.mass += alpha[i];
        let (x, y) = ((i % w) as u32, (i / w) as u32);
        c.bbox[0] = c.bbox[0].min(x);
        c.bbox[1] = c.bbox[1].min(y);
        c.bbox[2] = c.bbox[2].max(x + 1);
        c.bbox[3] = c.bbox[3].max(y + 1);
    }
    let mut out: Vec<Component> = comps
        .into_iter()
        .flatten()
        .map(|mut c| {
            c.bbox = [
                c.bbox[0],
                c.bbox[1],
                c.bbox[2] - c.bbox[0],
                c.bbox[3] - c.bbox[1],
            ];
            c
        })
        .collect();
    // biggest first, deterministic
    out.sort_by(|a, b| b.mass.total_cmp(&a.mass).then(a.bbox.cmp(&b.bbox)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_from_its_alpha_knows_its_mass_and_box() {
        let mut a = vec![0f32; 20 * 10];
        a[2 * 20 + 3] = 1.0;
        a[5 * 20 + 7] = 0.5;
        let c = Component::from_alpha(a, 20);
        assert_eq!((c.mass, c.bbox), (1.5, [3, 2, 5, 4]));
        assert_eq!(Component::from_alpha(vec![0.0; 8], 4).bbox, [0; 4]);
    }

    #[test]
    fn two_blobs_and_a_speck() {
        let (w, h) = (20, 10);
        let mut a = vec![0f32; w * h];
        for y in 2..6 {
            for x in 2..6 {
                a[y * w + x] = 1.0;
            }
            a[y * w + 6] = 0.3; // soft edge of blob 1
            for x in 12..18 {
                a[y * w + x] = 0.9;
            }
        }
        a[9 * w + 19] = 1.0; // speck
        let comps = split(&a, w, h, 4, 0.02);
        assert_eq!(comps.len(), 2);
        assert_eq!(comps[0].bbox, [12, 2, 6, 4]);
        assert_eq!(comps[1].bbox, [2, 2, 5, 4]);
        assert!((comps[1].alpha[2 * w + 6] - 0.3).abs() < 1e-6);
        assert_eq!(comps[0].alpha[2 * w + 6], 0.0);
    }
}
