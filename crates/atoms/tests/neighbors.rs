//! `atoms::neighbor_list` against ASE (a stored fixture), against a brute-force search over
//! all pairs and images, and on its invariants and errors.

use atoms::{neighbor_list, Cell, Edges, NeighborError, NeighborOptions, Pbc};
use proptest::prelude::*;
use serde_json::Value;

/// One edge: `(i, j, S)`.
type Edge = (usize, usize, [i32; 3]);

fn edge_list(edges: &Edges) -> Vec<Edge> {
    (0..edges.len())
        .map(|e| (edges.first[e], edges.second[e], edges.shifts[e]))
        .collect()
}

fn options(cutoff: f64) -> NeighborOptions {
    NeighborOptions::new(cutoff)
}

/// Every `(i, j, S)` with `|x_j - x_i + S * cell| < cutoff`, over all pairs and every shift
/// that could matter, computed the plain way.
fn brute_force(positions: &[[f64; 3]], cell: Option<&Cell>, pbc: Pbc, cutoff: f64) -> Vec<Edge> {
    let mut range = [0i32; 3];
    if let Some(cell) = cell {
        let face = cell.face_distances();
        for a in (0..3).filter(|&a| pbc[a]) {
            let floors: Vec<f64> = positions
                .iter()
                .map(|&x| cell.fractional(x)[a].floor())
                .collect();
            let spread = floors.iter().fold(0.0f64, |m, &f| m.max(f))
                - floors.iter().fold(0.0f64, |m, &f| m.min(f));
            range[a] = ((cutoff / face[a]).ceil() + spread) as i32 + 1;
        }
    }
    let mut out = Vec::new();
    for (i, xi) in positions.iter().enumerate() {
        for (j, xj) in positions.iter().enumerate() {
            for s0 in -range[0]..=range[0] {
                for s1 in -range[1]..=range[1] {
                    for s2 in -range[2]..=range[2] {
                        let shift = [s0, s1, s2];
                        if i == j && shift == [0, 0, 0] {
                            continue;
                        }
                        let offset = cell.map_or([0.0; 3], |c| c.shift_vector(shift));
                        let r: Vec<f64> = (0..3).map(|c| (xj[c] - xi[c]) + offset[c]).collect();
                        if (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]).sqrt() < cutoff {
                            out.push((i, j, shift));
                        }
                    }
                }
            }
        }
    }
    out.sort_unstable();
    out
}

fn to_f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

fn to_vec3s(v: &Value) -> Vec<[f64; 3]> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| {
            let x = to_f64s(x);
            [x[0], x[1], x[2]]
        })
        .collect()
}

#[test]
fn matches_ase_on_the_fixture() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ase_neighbors.json"
    ))
    .expect("the fixture is readable");
    let fixture: Value = serde_json::from_str(&text).expect("the fixture is JSON");
    let cases = fixture["cases"].as_array().expect("a list of cases");
    assert!(cases.len() >= 15);
    for case in cases {
        let name = case["name"].as_str().expect("a name");
        let positions = to_vec3s(&case["positions"]);
        let cell = match &case["cell"] {
            Value::Null => None,
            rows => {
                let rows = to_vec3s(rows);
                Some(Cell::new([rows[0], rows[1], rows[2]]).expect("a valid cell"))
            }
        };
        let flags: Vec<bool> = case["pbc"]
            .as_array()
            .expect("three flags")
            .iter()
            .map(|p| p.as_bool().expect("a flag"))
            .collect();
        let pbc = [flags[0], flags[1], flags[2]];
        let cutoff = case["cutoff"].as_f64().expect("a cutoff");
        let expected: Vec<Edge> = case["edges"]
            .as_array()
            .expect("a list of edges")
            .iter()
            .map(|e| {
                let v: Vec<i64> = e
                    .as_array()
                    .expect("an edge")
                    .iter()
                    .map(|x| x.as_i64().expect("an integer"))
                    .collect();
                (
                    v[0] as usize,
                    v[1] as usize,
                    [v[2] as i32, v[3] as i32, v[4] as i32],
                )
            })
            .collect();
        let edges = neighbor_list(&positions, cell.as_ref(), pbc, &options(cutoff))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!expected.is_empty(), "{name}: ASE found no edges");
        assert_eq!(
            edge_list(&edges),
            expected,
            "{name}: the edges differ from ASE's"
        );
        let distances = edges.distances(&positions, cell.as_ref());
        for (e, (ours, theirs)) in distances
            .iter()
            .zip(to_f64s(&case["distances"]))
            .enumerate()
        {
            assert!(
                (ours - theirs).abs() < 1e-12,
                "{name}: edge {e} has length {ours}, ASE {theirs}"
            );
        }
    }
}

#[test]
fn coincident_atoms_are_neighbours_at_distance_zero() {
    let cell = Cell::new([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]]).unwrap();
    let positions = [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]];
    let edges = neighbor_list(&positions, Some(&cell), [true; 3], &options(1.0)).unwrap();
    assert_eq!(
        edge_list(&edges),
        vec![(0, 1, [0, 0, 0]), (1, 0, [0, 0, 0])]
    );
    assert_eq!(edges.distances(&positions, Some(&cell)), vec![0.0, 0.0]);
}

#[test]
fn no_atoms_and_lone_atoms_have_no_edges() {
    let cell = Cell::new([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]]).unwrap();
    let none = neighbor_list(&[], Some(&cell), [true; 3], &options(5.0)).unwrap();
    assert!(none.is_empty());
    assert_eq!(none.len(), 0);
    let lone = neighbor_list(&[[1.0, 2.0, 3.0]], None, [false; 3], &options(5.0)).unwrap();
    assert!(lone.is_empty());
    let molecule_in_a_box = neighbor_list(
        &[[0.0; 3], [2.9, 0.0, 0.0]],
        Some(&cell),
        [false; 3],
        &options(1.0),
    )
    .unwrap();
    assert!(
        molecule_in_a_box.is_empty(),
        "no pbc: the cell must not make images"
    );
}

#[test]
fn huge_coordinates_without_a_cell_are_fine() {
    let positions = [
        [0.0, 0.0, 0.0],
        [1e15, 0.0, 0.0],
        [1e15 + 1.0, 0.0, 0.0],
        [-1.7e308, 1e300, 0.0],
        [1.7e308, -1e300, 5.0],
        [1.7e308, -1e300, 5.5],
    ];
    let edges = neighbor_list(&positions, None, [false; 3], &options(2.0)).unwrap();
    assert_eq!(
        edge_list(&edges),
        vec![
            (1, 2, [0, 0, 0]),
            (2, 1, [0, 0, 0]),
            (4, 5, [0, 0, 0]),
            (5, 4, [0, 0, 0])
        ]
    );
    // A long, sparse chain: the grid must stay proportional to the atoms, not the extent.
    let chain: Vec<[f64; 3]> = (0..2000).map(|k| [k as f64 * 1e6, 0.0, 0.0]).collect();
    let edges = neighbor_list(&chain, None, [false; 3], &options(1.0)).unwrap();
    assert!(edges.is_empty());
    let pairs: Vec<[f64; 3]> = (0..2000)
        .map(|k| [(k / 2) as f64 * 1e6 + (k % 2) as f64 * 0.5, 0.0, 0.0])
        .collect();
    let edges = neighbor_list(&pairs, None, [false; 3], &options(1.0)).unwrap();
    assert_eq!(edges.len(), 2000);
}

#[test]
fn refuses_periodicity_without_a_cell() {
    let err = neighbor_list(&[[0.0; 3]], None, [true, false, true], &options(3.0)).unwrap_err();
    assert_eq!(
        err,
        NeighborError::MissingCell {
            pbc: [true, false, true]
        }
    );
    assert!(err.to_string().contains("need a cell"));
}

#[test]
fn refuses_invalid_cutoffs() {
    for cutoff in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = neighbor_list(&[[0.0; 3]], None, [false; 3], &options(cutoff)).unwrap_err();
        assert!(
            matches!(err, NeighborError::InvalidCutoff { cutoff: c } if c.to_bits() == cutoff.to_bits()),
            "{err:?}"
        );
    }
}

#[test]
fn refuses_non_finite_positions_naming_the_atom() {
    let positions = [
        [0.0; 3],
        [1.0, 0.0, 0.0],
        [0.0, f64::NAN, 0.0],
        [f64::INFINITY, 0.0, 0.0],
    ];
    let err = neighbor_list(&positions, None, [false; 3], &options(3.0)).unwrap_err();
    assert_eq!(err, NeighborError::NonFinitePosition { atom: 2 });
    assert!(err.to_string().contains("atom 2"));
}

#[test]
fn refuses_atoms_far_outside_the_cell() {
    let cell = Cell::new([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]]).unwrap();
    let positions = [[0.0; 3], [0.0, 0.0, 3.0e10]];
    let err = neighbor_list(&positions, Some(&cell), [true; 3], &options(3.0)).unwrap_err();
    assert_eq!(err, NeighborError::FarOutsideCell { atom: 1 });
    // Along a non-periodic axis the same atom is fine.
    let edges = neighbor_list(&positions, Some(&cell), [true, true, false], &options(3.5)).unwrap();
    assert_eq!(edges.len(), 8);
}

#[test]
fn refuses_too_many_images_naming_the_count() {
    let cell = Cell::new([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).unwrap();
    // ceil(29.5 / 1) = 30 layers: 61^3 images.
    let err = neighbor_list(&[[0.0; 3]], Some(&cell), [true; 3], &options(29.5)).unwrap_err();
    assert_eq!(
        err,
        NeighborError::TooManyImages {
            images: 61 * 61 * 61,
            limit: 100_000
        }
    );
    assert!(err.to_string().contains("226981"));
    // Only periodic axes count, and the limit is an option.
    let slab = neighbor_list(
        &[[0.0; 3]],
        Some(&cell),
        [true, true, false],
        &options(29.5),
    );
    assert_eq!(slab.map(|edges| edges.len()), Ok(2732));
    let generous = NeighborOptions {
        cutoff: 29.5,
        max_images: 300_000,
    };
    assert!(neighbor_list(&[], Some(&cell), [true; 3], &generous).is_ok());
    // A nearly flat cell with an ordinary cutoff.
    let flat = Cell::new([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 7e-4]]).unwrap();
    let err = neighbor_list(&[[0.0; 3]], Some(&flat), [true; 3], &options(5.1)).unwrap_err();
    // ceil(5.1 / 4) = 2 and ceil(5.1 / 7e-4) = 7286 layers.
    assert!(matches!(err, NeighborError::TooManyImages { images, .. } if images == 5 * 5 * 14_573));
    // At a whole-number ratio the margin against rounding adds a layer: ceil(30 (1 + 1e-8)).
    let err = neighbor_list(&[[0.0; 3]], Some(&cell), [true; 3], &options(30.0)).unwrap_err();
    assert!(matches!(err, NeighborError::TooManyImages { images, .. } if images == 63 * 63 * 63));
    // No limit above 2^29, whatever the option says.
    let unlimited = NeighborOptions {
        cutoff: 1e4,
        max_images: usize::MAX,
    };
    let err = neighbor_list(&[[0.0; 3]], Some(&cell), [true; 3], &unlimited).unwrap_err();
    assert!(matches!(err, NeighborError::TooManyImages { limit, .. } if limit == 1 << 29));
}

#[test]
fn default_options() {
    let defaults = NeighborOptions::default();
    assert_eq!(defaults.max_images, 100_000);
    assert_eq!(NeighborOptions::new(2.5).max_images, 100_000);
    assert_eq!(NeighborOptions::new(2.5).cutoff, 2.5);
}

/// A random cell: lengths 2-7 A, shears up to 40 %, sometimes left-handed.
fn cell_strategy() -> impl Strategy<Value = Cell> {
    (
        prop::array::uniform3(2.0..7.0f64),
        prop::array::uniform3(-0.4..0.4f64),
        prop::array::uniform3(-0.4..0.4f64),
        any::<bool>(),
    )
        .prop_filter_map("a usable cell", |(len, lower, upper, flip)| {
            let mut rows = [
                [len[0], upper[0] * len[0], upper[1] * len[0]],
                [lower[0] * len[1], len[1], upper[2] * len[1]],
                [lower[1] * len[2], lower[2] * len[2], len[2]],
            ];
            if flip {
                rows.swap(0, 1);
            }
            let cell = Cell::new(rows).ok()?;
            (cell.face_distances().iter().all(|&f| f > 0.8)).then_some(cell)
        })
}

/// Up to 10 atoms at fractional coordinates in [-1.5, 2.5): many outside the cell.
fn fractional_strategy() -> impl Strategy<Value = Vec<[f64; 3]>> {
    prop::collection::vec(prop::array::uniform3(-1.5..2.5f64), 0..10)
}

fn check_invariants(edges: &Edges, positions: &[[f64; 3]], cell: Option<&Cell>, cutoff: f64) {
    let list = edge_list(edges);
    assert!(list.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
    for (e, &(i, j, s)) in list.iter().enumerate() {
        let reverse = list
            .binary_search(&(j, i, s.map(|v| -v)))
            .expect("every edge has its reverse");
        let forward = edges.displacement(e, positions, cell);
        let backward = edges.displacement(reverse, positions, cell);
        assert_eq!(forward, backward.map(|v| -v));
        let d = forward.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!(d < cutoff);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn periodic_lists_match_brute_force(
        cell in cell_strategy(),
        fractional in fractional_strategy(),
        pbc in prop::array::uniform3(any::<bool>()),
        cutoff in 0.3..6.0f64,
    ) {
        let positions: Vec<[f64; 3]> = fractional.iter().map(|&s| cell.cartesian(s)).collect();
        let edges = neighbor_list(&positions, Some(&cell), pbc, &options(cutoff)).unwrap();
        prop_assert_eq!(edge_list(&edges), brute_force(&positions, Some(&cell), pbc, cutoff));
        check_invariants(&edges, &positions, Some(&cell), cutoff);
    }

    #[test]
    fn open_lists_match_brute_force(
        positions in prop::collection::vec(prop::array::uniform3(-8.0..8.0f64), 0..40),
        cutoff in 0.2..5.0f64,
    ) {
        let edges = neighbor_list(&positions, None, [false; 3], &options(cutoff)).unwrap();
        prop_assert_eq!(edge_list(&edges), brute_force(&positions, None, [false; 3], cutoff));
        check_invariants(&edges, &positions, None, cutoff);
    }

    #[test]
    fn lattice_translations_and_wrapping_keep_the_displacements(
        cell in cell_strategy(),
        fractional in fractional_strategy(),
        pbc in prop::array::uniform3(any::<bool>()),
        cutoff in 0.3..6.0f64,
        translation in prop::array::uniform3(-3i32..=3),
    ) {
        let positions: Vec<[f64; 3]> = fractional.iter().map(|&s| cell.cartesian(s)).collect();
        let edges = neighbor_list(&positions, Some(&cell), pbc, &options(cutoff)).unwrap();
        let list = edge_list(&edges);
        let close = |a: [f64; 3], b: [f64; 3]| (0..3).all(|c| (a[c] - b[c]).abs() < 1e-9);

        // Every atom moved by one lattice vector: the same edges, the same displacements.
        let t = cell.shift_vector(translation);
        let moved: Vec<[f64; 3]> =
            positions.iter().map(|x| std::array::from_fn(|c| x[c] + t[c])).collect();
        let moved_edges = neighbor_list(&moved, Some(&cell), pbc, &options(cutoff)).unwrap();
        prop_assert_eq!(edge_list(&moved_edges), list.clone());
        for e in 0..edges.len() {
            prop_assert!(close(
                moved_edges.displacement(e, &moved, Some(&cell)),
                edges.displacement(e, &positions, Some(&cell)),
            ));
        }

        // Every atom wrapped into the cell along the periodic axes, x' = x - n * cell: edge
        // (i, j, S') there is (i, j, S' + n_i - n_j) here, with the same displacement.
        let image: Vec<[i32; 3]> = fractional
            .iter()
            .map(|s| std::array::from_fn(|a| if pbc[a] { s[a].floor() as i32 } else { 0 }))
            .collect();
        let wrapped: Vec<[f64; 3]> = positions
            .iter()
            .zip(&image)
            .map(|(x, &n)| {
                let back = cell.shift_vector(n);
                std::array::from_fn(|c| x[c] - back[c])
            })
            .collect();
        let wrapped_edges = neighbor_list(&wrapped, Some(&cell), pbc, &options(cutoff)).unwrap();
        let mut mapped: Vec<(Edge, [f64; 3])> = (0..wrapped_edges.len())
            .map(|e| {
                let (i, j) = (wrapped_edges.first[e], wrapped_edges.second[e]);
                let s = wrapped_edges.shifts[e];
                let shift = std::array::from_fn(|a| s[a] + image[i][a] - image[j][a]);
                ((i, j, shift), wrapped_edges.displacement(e, &wrapped, Some(&cell)))
            })
            .collect();
        mapped.sort_by_key(|a| a.0);
        prop_assert_eq!(mapped.iter().map(|m| m.0).collect::<Vec<_>>(), list);
        for (e, m) in mapped.iter().enumerate() {
            prop_assert!(close(m.1, edges.displacement(e, &positions, Some(&cell))));
        }
    }
}
