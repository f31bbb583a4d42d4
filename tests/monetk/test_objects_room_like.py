"""Specification of the offline ObjectsRoom-like generator (monetk/data/objects_room_like.py)."""

import dataclasses
import math
import time

import numpy as np
import pytest
from matplotlib.colors import rgb_to_hsv

from monetk.data.objects_room_like import (
    BACKGROUND_ENTITIES,
    FIELD_OF_VIEW,
    NUM_ENTITIES,
    OBJECT_HUES,
    Camera,
    Scene,
    SceneObject,
    generate_objects_room_like,
    generate_objects_room_like_masks,
    render_scene,
    sample_scenes,
    save_preview,
)

SKY, FLOOR, WALL_X, WALL_Z = 0, 1, 2, 3  # DeepMind's ObjectsRoom order, restated here
GREY = ((0.5, 0.5, 0.5),) * 4


@pytest.fixture(scope="module")
def batch():
    """300 images at 64 px with the scenes they were rendered from."""
    images, labels = generate_objects_room_like(300, seed=7)
    return images, labels, sample_scenes(300, seed=7)


def looking_at(target_x: float, target_z: float, target_y: float, distance: float) -> Camera:
    """A camera ``distance`` away along the floor from a point, aimed straight at it."""
    yaw = math.atan2(-1.0, -1.0)  # towards the corner, as the generator's cameras look
    height = 1.2
    return Camera(
        x=target_x - distance * math.sin(yaw),
        z=target_z - distance * math.cos(yaw),
        height=height,
        yaw=yaw,
        pitch=-math.atan2(height - target_y, distance),
    )


def sphere(x: float, z: float, radius: float, color=(1.0, 0.0, 0.0)) -> SceneObject:
    return SceneObject("sphere", x, z, radius, 0.0, color)


# --- shapes, determinism ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [16, 32, 64, 128])
def test_shapes_and_dtypes_for_each_power_of_two(size):
    images, labels = generate_objects_room_like(3, image_size=size, seed=1)
    assert images.shape == (3, size, size, 3) and images.dtype == np.uint8
    assert labels.shape == (3, size, size) and labels.dtype == np.uint8


def test_same_seed_same_output_and_other_seed_differs():
    first = generate_objects_room_like(6, seed=3)
    again = generate_objects_room_like(6, seed=3)
    other = generate_objects_room_like(6, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


def test_image_i_does_not_depend_on_n_start_or_chunking():
    images, labels = generate_objects_room_like(10, seed=5)
    prefix = generate_objects_room_like(5, seed=5)
    suffix = generate_objects_room_like(4, seed=5, start=6)
    chunked = generate_objects_room_like(10, seed=5, chunk_size=3)
    assert np.array_equal(prefix[0], images[:5]) and np.array_equal(prefix[1], labels[:5])
    assert np.array_equal(suffix[0], images[6:]) and np.array_equal(suffix[1], labels[6:])
    assert np.array_equal(chunked[0], images) and np.array_equal(chunked[1], labels)


# --- labels -------------------------------------------------------------------------------------


def test_module_constants_follow_objects_room():
    assert NUM_ENTITIES == 7
    assert BACKGROUND_ENTITIES == (SKY, FLOOR, WALL_X, WALL_Z)


def test_labels_partition_the_image_into_at_most_seven_entities(batch):
    _, labels, _ = batch
    assert labels.max() < NUM_ENTITIES
    one_hot = labels[..., None] == np.arange(NUM_ENTITIES)  # independent of the module
    assert np.array_equal(one_hot.sum(-1), np.ones(labels.shape))


def test_every_image_shows_all_four_background_entities(batch):
    _, labels, _ = batch
    for image_labels in labels:
        assert set(BACKGROUND_ENTITIES) <= set(np.unique(image_labels).tolist())


def test_top_row_is_sky_and_bottom_row_is_floor_or_objects(batch):
    _, labels, _ = batch
    assert np.all(labels[:, 0, :] == SKY)
    assert not np.isin(labels[:, -1, :], [SKY, WALL_X, WALL_Z]).any()


def test_in_every_column_sky_is_above_walls_and_walls_above_floor(batch):
    _, labels, _ = batch
    size = labels.shape[1]
    rows = np.arange(size)[None, :, None]
    wall = (labels == WALL_X) | (labels == WALL_Z)

    def lowest(mask):  # largest row index per image and column, -1 where absent
        return np.where(mask, rows, -1).max(axis=1)

    def highest(mask):  # smallest row index, size where absent
        return np.where(mask, rows, size).min(axis=1)

    assert np.all(lowest(labels == SKY) < highest(wall))
    assert np.all(lowest(wall) < highest(labels == FLOOR))


def test_in_every_row_wall_z_is_left_of_the_corner_and_wall_x_right(batch):
    _, labels, _ = batch
    size = labels.shape[2]
    cols = np.arange(size)[None, None, :]
    rightmost_z = np.where(labels == WALL_Z, cols, -1).max(axis=2)
    leftmost_x = np.where(labels == WALL_X, cols, size).min(axis=2)
    assert np.all(rightmost_z < leftmost_x)
    both = (rightmost_z >= 0) & (leftmost_x < size)
    assert both.any(axis=1).all()  # every image has rows showing both walls


# --- objects ------------------------------------------------------------------------------------


@pytest.mark.parametrize("min_objects,max_objects", [(1, 3), (0, 0), (2, 2), (3, 3), (0, 1)])
def test_every_placed_object_is_visible_and_counts_are_in_range(min_objects, max_objects):
    _, labels = generate_objects_room_like(
        120, seed=9, min_objects=min_objects, max_objects=max_objects
    )
    scenes = sample_scenes(120, seed=9, min_objects=min_objects, max_objects=max_objects)
    counts = [len(scene.objects) for scene in scenes]
    assert min(counts) >= min_objects and max(counts) <= max_objects
    if min_objects < max_objects:
        assert len(set(counts)) > 1
    for image_labels, count in zip(labels, counts, strict=True):
        visible = sorted(set(np.unique(image_labels).tolist()) - set(BACKGROUND_ENTITIES))
        assert visible == list(range(4, 4 + count))


def test_objects_stand_apart_inside_the_room(batch):
    *_, scenes = batch
    for scene in scenes:
        for i, a in enumerate(scene.objects):
            assert a.x > a.size and a.z > a.size
            for b in scene.objects[i + 1 :]:
                assert math.hypot(a.x - b.x, a.z - b.z) > a.size + b.size


def test_a_sphere_on_the_optical_axis_covers_its_closed_form_area():
    # The tangent cone of a sphere at distance D with radius r has half-angle asin(r / D); on the
    # image plane at focal length f (pixels) it cuts a circle of radius f * tan(asin(r / D)).
    size, radius = 128, 0.5
    focal = size / 2 / math.tan(FIELD_OF_VIEW / 2)
    areas = []
    for distance in (3.0, 6.0):
        cam = looking_at(3.0, 3.0, radius, distance)
        scene = Scene(cam, GREY, (sphere(3.0, 3.0, radius),))
        _, labels = render_scene(scene, size)
        centre_distance = math.hypot(distance, cam.height - radius)
        expected = math.pi * (focal * math.tan(math.asin(radius / centre_distance))) ** 2
        areas.append((labels == 4).sum())
        assert areas[-1] == pytest.approx(expected, rel=0.05)
        rows, cols = np.nonzero(labels == 4)  # centred in the image
        assert rows.mean() == pytest.approx(size / 2 - 0.5, abs=1.0)
        assert cols.mean() == pytest.approx(size / 2 - 0.5, abs=1.0)
    assert areas[0] > 3 * areas[1]  # farther is smaller


def pixel_rays(cam: Camera, size: int) -> np.ndarray:
    """Unit ray of every pixel, ``[size, size, 3]``, from the convention in ``Camera``'s docs."""
    cy, sy, cp, sp = math.cos(cam.yaw), math.sin(cam.yaw), math.cos(cam.pitch), math.sin(cam.pitch)
    forward = np.array([cp * sy, sp, cp * cy])
    right = np.array([cy, 0.0, -sy])
    up = np.cross(forward, right)
    a = (2 * np.arange(size) + 1) / size - 1
    half = math.tan(FIELD_OF_VIEW / 2)
    rays = forward + half * (a[None, :, None] * right - a[:, None, None] * up)  # b = -a
    return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


def inside(obj: SceneObject, points: np.ndarray) -> np.ndarray:
    """Whether world points ``[..., 3]`` lie inside the solid ``obj``."""
    x, y, z = points[..., 0] - obj.x, points[..., 1], points[..., 2] - obj.z
    s = obj.size
    if obj.shape == "sphere":
        return x**2 + (y - s) ** 2 + z**2 <= s**2
    if obj.shape == "cylinder":
        return (x**2 + z**2 <= s**2) & (y >= 0) & (y <= 2 * s)
    c, n = math.cos(obj.angle), math.sin(obj.angle)  # the cube's axes: (c, -n) and (n, c)
    return (abs(c * x - n * z) <= s) & (abs(n * x + c * z) <= s) & (y >= 0) & (y <= 2 * s)


@pytest.mark.parametrize("shape", ["cube", "sphere", "cylinder"])
@pytest.mark.parametrize(
    "shift,distance,turn",
    [(0.0, 2.5, 0.0), (0.9, 2.5, 0.0), (0.0, 0.8, 0.6)],  # centred, cut by the edge, close by
)
def test_object_silhouettes_match_ray_marching(shape, shift, distance, turn):
    size = 32
    cam = looking_at(3.0, 3.0, 0.5, distance)
    cam = dataclasses.replace(cam, yaw=cam.yaw + turn)
    obj = SceneObject(shape, 3.0 + shift, 3.0 - shift, 0.6, 0.5, (1.0, 0.5, 0.0))
    _, labels = render_scene(Scene(cam, GREY, (obj,)), size)
    steps = np.arange(0.05, 6.0, 0.004)
    origin = np.array([cam.x, cam.height, cam.z])
    rays = pixel_rays(cam, size)
    marched = np.zeros((size, size), bool)
    for t in np.array_split(steps, 10):
        points = origin + rays[:, :, None, :] * t[None, None, :, None]
        marched |= inside(obj, points).any(axis=-1)
    assert 0.03 < marched.mean() < 1.0  # the object and some background show
    assert (labels == 4).sum() == pytest.approx(marched.sum(), abs=3)
    assert ((labels == 4) != marched).sum() <= 3  # only where a ray grazes the surface


@pytest.mark.parametrize("near_first", [True, False])
def test_the_nearer_object_wins_where_two_overlap(near_first):
    cam = looking_at(2.0, 2.0, 0.4, 5.0)
    toward_camera = (cam.x - 2.0) / 5.0, (cam.z - 2.0) / 5.0  # unit vector along the floor
    near = SceneObject(
        "cube", 2.0 + 2.0 * toward_camera[0], 2.0 + 2.0 * toward_camera[1], 0.3, 0.4, (0, 0, 1.0)
    )
    far = SceneObject("cylinder", 2.0, 2.0, 0.5, 0.0, (1.0, 0, 0))
    alone = {obj: render_scene(Scene(cam, GREY, (obj,)), 64)[1] == 4 for obj in (near, far)}
    overlap = alone[near] & alone[far]
    assert overlap.sum() > 20 and (alone[far] & ~alone[near]).any()  # a real, partial overlap
    objects = (near, far) if near_first else (far, near)
    _, labels = render_scene(Scene(cam, GREY, objects), 64)
    near_id = 4 + objects.index(near)
    assert np.all(labels[overlap] == near_id)
    assert np.array_equal(labels >= 4, alone[near] | alone[far])


# --- colours ------------------------------------------------------------------------------------


def circular_distance(a, b):
    return np.minimum(np.abs(a - b), 1.0 - np.abs(a - b))


def test_pixels_of_each_entity_share_its_hue(batch):
    images, labels, scenes = batch
    hsv = rgb_to_hsv(images / 255.0)
    for image_hsv, image_labels, scene in zip(hsv[:100], labels[:100], scenes[:100], strict=True):
        colors = list(scene.colors) + [o.color for o in scene.objects]
        for entity, color in enumerate(colors):
            pixels = image_hsv[image_labels == entity]
            target = rgb_to_hsv(np.array(color))
            chroma = pixels[:, 1] * pixels[:, 2]  # hue is ill-defined for near-grey pixels
            assert chroma.min() > 0.04, (entity, color)
            assert circular_distance(pixels[:, 0], target[0]).max() < 0.03, (entity, color)


def test_object_colours_come_from_the_palette_and_walls_differ(batch):
    *_, scenes = batch
    palette = np.array(OBJECT_HUES)
    for scene in scenes:
        for obj in scene.objects:
            hue = rgb_to_hsv(np.array(obj.color))[0]
            assert circular_distance(palette, hue).min() < 1e-6
        wall_hues = [rgb_to_hsv(np.array(c))[0] for c in scene.colors[2:]]
        assert circular_distance(*wall_hues) >= 0.2 - 1e-6


def test_a_cube_has_a_lit_side_and_a_dark_side_of_one_hue():
    cam = looking_at(3.0, 3.0, 0.4, 4.0)
    cube = SceneObject("cube", 3.0, 3.0, 0.4, 0.1, (0.2, 0.8, 0.3))  # faces x, z: lit, dark
    image, labels = render_scene(Scene(cam, GREY, (cube,)), 64)
    hsv = rgb_to_hsv(image[labels == 4] / 255.0)
    levels = np.unique(np.round(hsv[:, 2], 2))
    assert hsv[:, 2].max() > 1.3 * hsv[:, 2].min()  # lit and dark faces
    assert len(levels) <= 4  # flat faces: a few brightness levels, not a gradient
    assert circular_distance(hsv[:, 0], rgb_to_hsv(np.array(cube.color))[0]).max() < 0.02


def test_a_sphere_is_shaded_smoothly():
    cam = looking_at(3.0, 3.0, 0.5, 3.0)
    image, labels = render_scene(Scene(cam, GREY, (sphere(3.0, 3.0, 0.5),)), 64)
    brightness = image[labels == 4].max(axis=1)
    assert len(np.unique(brightness)) > 20


# --- masks layout -------------------------------------------------------------------------------


def test_masks_follow_deepmind_layout():
    images, masks = generate_objects_room_like_masks(4, image_size=32, seed=2)
    _, labels = generate_objects_room_like(4, image_size=32, seed=2)
    assert masks.shape == (4, NUM_ENTITIES, 32, 32, 1) and masks.dtype == np.uint8
    expected = np.zeros((4, NUM_ENTITIES, 32, 32, 1), np.uint8)
    for i, y, x in np.ndindex(labels.shape):
        expected[i, labels[i, y, x], y, x, 0] = 255
    assert np.array_equal(masks, expected)
    assert images.shape == (4, 32, 32, 3)


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"image_size": 48}, "^image_size: .*power of two"),
        ({"image_size": 8}, "^image_size:"),
        ({"image_size": 64.0}, "^image_size:"),
        ({"max_objects": 4}, "max_objects <= 3.*max_objects=4"),
        ({"min_objects": 2, "max_objects": 1}, "min_objects=2, max_objects=1"),
        ({"min_objects": -1}, "0 <= min_objects.*min_objects=-1"),
        ({"n": -1}, "^n: must be >= 0"),
        ({"chunk_size": 0}, "^chunk_size:"),
    ],
)
def test_bad_arguments_are_named(kwargs, field):
    arguments = {"n": 2, **kwargs}
    with pytest.raises(ValueError, match=field):
        generate_objects_room_like(**arguments)


def test_bad_scenes_are_rejected():
    cam = looking_at(3.0, 3.0, 0.5, 3.0)
    with pytest.raises(ValueError, match="shape"):
        Scene(cam, GREY, (SceneObject("cone", 3.0, 3.0, 0.3, 0.0, (1, 0, 0)),))
    with pytest.raises(ValueError, match="camera"):
        Scene(Camera(x=-1.0, z=3.0, height=1.0, yaw=0.0, pitch=0.0), GREY, ())
    with pytest.raises(ValueError, match="objects"):
        Scene(cam, GREY, (sphere(3.0, 3.0, 0.3),) * 4)


# --- picture and speed --------------------------------------------------------------------------


def test_preview_picture_is_written(tmp_path):
    import matplotlib.image

    out = tmp_path / "preview.png"
    save_preview(str(out), count=4)
    picture = matplotlib.image.imread(out)
    assert picture.ndim == 3 and picture.shape[1] > picture.shape[0] > 50


@pytest.mark.slow
def test_at_least_2000_images_per_second_on_one_core():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1):
        generate_objects_room_like(64)  # warm up
        rates = []
        for _ in range(3):  # CPU time of this process: robust to other processes' load
            start = time.process_time()
            generate_objects_room_like(2000, seed=1)
            rates.append(2000 / (time.process_time() - start))
    print(f"ObjectsRoom-like, 64 px, one thread: {max(rates):.0f} images/s")
    assert max(rates) >= 2000
