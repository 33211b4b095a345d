//! Plane geometry for text detection: connected components of a bitmap, convex hulls,
//! minimum-area rotated rectangles and point-in-quad tests.
//!
//! These stand in for the OpenCV calls of PP-OCR's DB post-processing (`findContours`,
//! `minAreaRect`, `boxPoints`, `fillPoly`). Points are pixel coordinates (pixel centres at
//! integers, as OpenCV's contours are). The convex hull of a component equals the hull of
//! its outer contour, so a component is reduced to the two end pixels of each of its runs.

/// One 8-connected component of a bitmap: the end points of its horizontal runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Component {
    pub points: Vec<[i32; 2]>,
    pub pixels: usize,
}

/// The 8-connected components of `bitmap` (`w × h`, nonzero = set), in order of their
/// first pixel in raster order.
pub(crate) fn components(bitmap: &[u8], w: usize, h: usize) -> Vec<Component> {
    // Runs per row, then union-find over runs that touch (8-connectivity).
    struct Run {
        y: usize,
        x0: usize,
        x1: usize, // inclusive
    }
    let mut runs: Vec<Run> = Vec::new();
    let mut row_start = Vec::with_capacity(h + 1);
    for y in 0..h {
        row_start.push(runs.len());
        let row = &bitmap[y * w..(y + 1) * w];
        let mut x = 0;
        while x < w {
            if row[x] != 0 {
                let x0 = x;
                while x < w && row[x] != 0 {
                    x += 1;
                }
                runs.push(Run { y, x0, x1: x - 1 });
            } else {
                x += 1;
            }
        }
    }
    row_start.push(runs.len());

    let mut parent: Vec<usize> = (0..runs.len()).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for y in 1..h {
        let (prev, cur) = (
            row_start[y - 1]..row_start[y],
            row_start[y]..row_start[y + 1],
        );
        let mut p = prev.start;
        for c in cur {
            // Advance past previous-row runs that end before this run's reach.
            while p < prev.end && runs[p].x1 + 1 < runs[c].x0 {
                p += 1;
            }
            let mut q = p;
            while q < prev.end && runs[q].x0 <= runs[c].x1 + 1 {
                let (a, b) = (find(&mut parent, q), find(&mut parent, c));
                if a != b {
                    // Keep the earlier run as the root so labels follow raster order.
                    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                    parent[hi] = lo;
                }
                q += 1;
            }
        }
    }

    let mut label_of_root = vec![usize::MAX; runs.len()];
    let mut out: Vec<Component> = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let root = find(&mut parent, i);
        if label_of_root[root] == usize::MAX {
            label_of_root[root] = out.len();
            out.push(Component::default());
        }
        let comp = &mut out[label_of_root[root]];
        comp.points.push([run.x0 as i32, run.y as i32]);
        if run.x1 != run.x0 {
            comp.points.push([run.x1 as i32, run.y as i32]);
        }
        comp.pixels += run.x1 - run.x0 + 1;
    }
    out
}

fn cross(o: [i64; 2], a: [i64; 2], b: [i64; 2]) -> i64 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

/// Convex hull (Andrew's monotone chain), counter-clockwise in image coordinates' math
/// orientation, without collinear points.
pub(crate) fn convex_hull(points: &[[i32; 2]]) -> Vec<[f64; 2]> {
    let mut pts: Vec<[i64; 2]> = points.iter().map(|p| [p[0] as i64, p[1] as i64]).collect();
    pts.sort_unstable();
    pts.dedup();
    if pts.len() < 3 {
        return pts.iter().map(|p| [p[0] as f64, p[1] as f64]).collect();
    }
    let mut hull: Vec<[i64; 2]> = Vec::with_capacity(pts.len() * 2);
    for &p in &pts {
        while hull.len() >= 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0 {
            hull.pop();
        }
        hull.push(p);
    }
    let lower = hull.len() + 1;
    for &p in pts.iter().rev().skip(1) {
        while hull.len() >= lower && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0 {
            hull.pop();
        }
        hull.push(p);
    }
    hull.pop();
    hull.iter().map(|p| [p[0] as f64, p[1] as f64]).collect()
}

/// A rotated rectangle: centre, unit axis `u` (its `width` direction), `width`, `height`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RotatedRect {
    pub center: [f64; 2],
    pub axis: [f64; 2],
    pub width: f64,
    pub height: f64,
}

impl RotatedRect {
    /// The shorter side, as PP-OCR's `get_mini_boxes` returns it.
    pub fn short_side(&self) -> f64 {
        self.width.min(self.height)
    }

    /// The same rectangle grown by `d` on every side.
    pub fn grown(&self, d: f64) -> RotatedRect {
        RotatedRect {
            width: (self.width + 2.0 * d).max(0.0),
            height: (self.height + 2.0 * d).max(0.0),
            ..*self
        }
    }

    /// Corners ordered like PP-OCR's `get_mini_boxes`: of the two leftmost corners the upper
    /// one first, then of the two rightmost the upper one, the lower one, and finally the
    /// lower left — i.e. top-left, top-right, bottom-right, bottom-left.
    pub fn corners(&self) -> [[f64; 2]; 4] {
        let [ux, uy] = self.axis;
        let (vx, vy) = (-uy, ux);
        let (hw, hh) = (self.width / 2.0, self.height / 2.0);
        let [cx, cy] = self.center;
        let mut pts = [
            [cx - ux * hw - vx * hh, cy - uy * hw - vy * hh],
            [cx + ux * hw - vx * hh, cy + uy * hw - vy * hh],
            [cx + ux * hw + vx * hh, cy + uy * hw + vy * hh],
            [cx - ux * hw + vx * hh, cy - uy * hw + vy * hh],
        ];
        pts.sort_by(|a, b| a[0].total_cmp(&b[0]));
        let (tl, bl) = if pts[1][1] > pts[0][1] {
            (pts[0], pts[1])
        } else {
            (pts[1], pts[0])
        };
        let (tr, br) = if pts[3][1] > pts[2][1] {
            (pts[2], pts[3])
        } else {
            (pts[3], pts[2])
        };
        [tl, tr, br, bl]
    }
}

/// The minimum-area enclosing rectangle of a convex hull (rotating calipers over the hull's
/// edges; O(n²), hulls here are small). A single point gives a 0×0 rectangle.
pub(crate) fn min_area_rect(hull: &[[f64; 2]]) -> RotatedRect {
    match hull.len() {
        0 => {
            return RotatedRect {
                center: [0.0, 0.0],
                axis: [1.0, 0.0],
                width: 0.0,
                height: 0.0,
            }
        }
        1 => {
            return RotatedRect {
                center: hull[0],
                axis: [1.0, 0.0],
                width: 0.0,
                height: 0.0,
            }
        }
        _ => {}
    }
    let mut best: Option<(f64, RotatedRect)> = None;
    for i in 0..hull.len() {
        let a = hull[i];
        let b = hull[(i + 1) % hull.len()];
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let len = (dx * dx + dy * dy).sqrt();
        if len < 1e-12 {
            continue;
        }
        let u = [dx / len, dy / len];
        let v = [-u[1], u[0]];
        let (mut u_lo, mut u_hi, mut v_lo, mut v_hi) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for p in hull {
            let pu = p[0] * u[0] + p[1] * u[1];
            let pv = p[0] * v[0] + p[1] * v[1];
            u_lo = u_lo.min(pu);
            u_hi = u_hi.max(pu);
            v_lo = v_lo.min(pv);
            v_hi = v_hi.max(pv);
        }
        let (width, height) = (u_hi - u_lo, v_hi - v_lo);
        let area = width * height;
        // Prefer the smaller area; ties go to the most axis-aligned orientation.
        let better = match &best {
            None => true,
            Some((best_area, rect)) => {
                area < best_area - 1e-9
                    || (area <= best_area + 1e-9 && u[0].abs() > rect.axis[0].abs() + 1e-12)
            }
        };
        if better {
            let (cu, cv) = ((u_lo + u_hi) / 2.0, (v_lo + v_hi) / 2.0);
            let center = [cu * u[0] + cv * v[0], cu * u[1] + cv * v[1]];
            best = Some((
                area,
                RotatedRect {
                    center,
                    axis: u,
                    width,
                    height,
                },
            ));
        }
    }
    best.map(|(_, r)| r).unwrap_or(RotatedRect {
        center: hull[0],
        axis: [1.0, 0.0],
        width: 0.0,
        height: 0.0,
    })
}

/// Area and perimeter of a polygon (shoelace formula).
pub(crate) fn area_and_perimeter(poly: &[[f64; 2]]) -> (f64, f64) {
    let (twice_area, perimeter) = signed_area_and_perimeter(poly);
    (twice_area.abs() / 2.0, perimeter)
}

/// Twice the signed area (positive when counter-clockwise in math orientation) and the
/// perimeter.
fn signed_area_and_perimeter(poly: &[[f64; 2]]) -> (f64, f64) {
    let mut twice_area = 0.0;
    let mut perimeter = 0.0;
    for i in 0..poly.len() {
        let a = poly[i];
        let b = poly[(i + 1) % poly.len()];
        twice_area += a[0] * b[1] - b[0] * a[1];
        perimeter += ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
    }
    (twice_area, perimeter)
}

/// Whether pixel `p` is covered when OpenCV's `fillPoly` fills the convex quad `quad`
/// (either winding): inside, or within half a pixel of an edge along the edge's minor axis,
/// as the rasterised outline includes those pixels.
pub(crate) fn in_filled_quad(quad: &[[f64; 2]; 4], p: [f64; 2]) -> bool {
    let (twice_area, _) = signed_area_and_perimeter(quad);
    let orientation = if twice_area < 0.0 { -1.0 } else { 1.0 };
    for i in 0..4 {
        let a = quad[i];
        let b = quad[(i + 1) % 4];
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let major = dx.abs().max(dy.abs());
        if major <= 1e-12 {
            continue;
        }
        let offset = orientation * (dx * (p[1] - a[1]) - dy * (p[0] - a[0])) / major;
        if offset < -0.5 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_eight_connected_and_in_raster_order() {
        #[rustfmt::skip]
        let bitmap = [
            1, 1, 0, 0, 0, 1,
            0, 0, 1, 0, 0, 1,
            0, 0, 0, 0, 0, 0,
            1, 0, 0, 1, 1, 1,
        ];
        let comps = components(&bitmap, 6, 4);
        assert_eq!(comps.len(), 4, "{comps:?}");
        assert_eq!(comps[0].pixels, 3); // (0,0),(1,0) and the diagonal (2,1)
        assert_eq!(comps[1].pixels, 2); // the column at x = 5
        assert_eq!(comps[2].pixels, 1);
        assert_eq!(comps[3].pixels, 3);
        assert!(comps[3].points.contains(&[3, 3]) && comps[3].points.contains(&[5, 3]));
    }

    #[test]
    fn a_u_shape_is_one_component() {
        #[rustfmt::skip]
        let bitmap = [
            1, 0, 0, 1,
            1, 0, 0, 1,
            1, 1, 1, 1,
        ];
        assert_eq!(components(&bitmap, 4, 3).len(), 1);
    }

    #[test]
    fn hull_drops_interior_and_collinear_points() {
        let pts = [[0, 0], [2, 0], [4, 0], [4, 3], [0, 3], [2, 1], [1, 2]];
        let hull = convex_hull(&pts);
        assert_eq!(hull.len(), 4, "{hull:?}");
    }

    #[test]
    fn min_area_rect_of_an_axis_aligned_block() {
        let pts: Vec<[i32; 2]> = (10..=30)
            .flat_map(|x| (5..=9).map(move |y| [x, y]))
            .collect();
        let r = min_area_rect(&convex_hull(&pts));
        assert!(
            (r.width - 20.0).abs() < 1e-9 && (r.height - 4.0).abs() < 1e-9,
            "{r:?}"
        );
        assert!((r.center[0] - 20.0).abs() < 1e-9 && (r.center[1] - 7.0).abs() < 1e-9);
        let c = r.corners();
        assert_eq!(c, [[10.0, 5.0], [30.0, 5.0], [30.0, 9.0], [10.0, 9.0]]);
        let g = r.grown(1.5);
        assert_eq!(g.corners()[0], [8.5, 3.5]);
        assert_eq!(r.short_side(), 4.0);
    }

    #[test]
    fn min_area_rect_of_a_rotated_bar() {
        // A bar along the diagonal: its min-area rect is thin and rotated 45°.
        let pts: Vec<[i32; 2]> = (0..40).flat_map(|t| [[t, t], [t + 1, t]]).collect();
        let r = min_area_rect(&convex_hull(&pts));
        let long = r.width.max(r.height);
        let short = r.width.min(r.height);
        assert!(long > 54.0 && short < 1.0, "{r:?}");
        assert!((r.axis[0].abs() - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    }

    #[test]
    fn degenerate_rects() {
        assert_eq!(min_area_rect(&[]).width, 0.0);
        let r = min_area_rect(&convex_hull(&[[3, 4]]));
        assert_eq!((r.center, r.width, r.height), ([3.0, 4.0], 0.0, 0.0));
        let r = min_area_rect(&convex_hull(&[[0, 0], [5, 0]]));
        assert!((r.width.max(r.height) - 5.0).abs() < 1e-9 && r.short_side() < 1e-9);
    }

    #[test]
    fn polygon_area_perimeter_and_containment() {
        let q = [[0.0, 0.0], [4.0, 0.0], [4.0, 2.0], [0.0, 2.0]];
        assert_eq!(area_and_perimeter(&q), (8.0, 12.0));
        assert!(in_filled_quad(&q, [2.0, 1.0]));
        assert!(in_filled_quad(&q, [4.0, 2.0]));
        assert!(!in_filled_quad(&q, [5.0, 1.0]));
        let rev = [q[3], q[2], q[1], q[0]];
        assert!(in_filled_quad(&rev, [0.5, 0.5]));
        assert!(!in_filled_quad(&rev, [0.0, 3.0]));
        // A slanted top edge from (0, 3) to (10, 0): the pixel (5, 1) lies 0.5 above the
        // line y = 3 − 0.3·x and is drawn as part of the outline; (5, 0) is not.
        let slanted = [[0.0, 3.0], [10.0, 0.0], [10.0, 8.0], [0.0, 8.0]];
        assert!(in_filled_quad(&slanted, [5.0, 1.0]));
        assert!(!in_filled_quad(&slanted, [5.0, 0.0]));
    }
}
