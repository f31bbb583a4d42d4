"""ObjectsRoom-like scenes generated offline: a procedural 3D room rendered by ray casting.

DeepMind's ObjectsRoom (Kabra et al., 2019) shows a room from a random viewpoint: a floor, two wall
halves meeting at a corner, the sky above them, and 1-3 solid objects standing on the floor. This
module draws scenes with the same structure and the same entity ids, vectorised over chunks of
images with numpy (one ray per pixel, exact depth test):

    0 = sky, 1 = floor, 2 = wall on the plane x = 0 (right of the corner in the image),
    3 = wall on the plane z = 0 (left of the corner), 4..6 = objects

World frame: y is up, the floor is y = 0, the room is x >= 0, z >= 0 with walls of height
``WALL_HEIGHT`` on x = 0 and z = 0 (the corner is the origin) and no ceiling. The camera stands
inside the room, below the top of the walls, looking towards the corner. Objects (cube, sphere,
cylinder) stand on the floor, never interpenetrate, and are shaded by a fixed directional light
(no shadows, no textures). Image ``i`` of a dataset depends only on ``(seed, i)``.

Picture: ``python -m monetk.data.objects_room_like --out docs/objects_room_like.png``.
"""

from __future__ import annotations

import argparse
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from monetk.data.masks import labels_to_masks

#: Entities per image, as in ObjectsRoom's ``train`` split: 4 background parts + 3 object slots.
NUM_ENTITIES = 7
#: Ground-truth ids that FG-ARI drops: sky, floor and the two walls.
BACKGROUND_ENTITIES = (0, 1, 2, 3)
SKY, FLOOR, WALL_X, WALL_Z = BACKGROUND_ENTITIES
FIRST_OBJECT = 4
MAX_OBJECTS = NUM_ENTITIES - FIRST_OBJECT
SHAPES = ("cube", "sphere", "cylinder")

WALL_HEIGHT = 1.8
FIELD_OF_VIEW = math.radians(60.0)  # horizontal and vertical
#: Unit vector towards the light: the faces looking along +x are lit, those along +z darker.
LIGHT = tuple(float(v) for v in np.array([0.8, 0.55, 0.25]) / np.linalg.norm([0.8, 0.55, 0.25]))
AMBIENT = 0.4  # shade of a surface facing away from the light
#: Hues (fractions of the colour wheel) that object colours are drawn from.
OBJECT_HUES = tuple(h / 12 for h in range(12))

# Sampling ranges of the generator (world units).
_CAMERA_XZ = (4.0, 6.0)
_CAMERA_HEIGHT = (0.9, 1.4)
_CAMERA_YAW_JITTER = math.radians(12.0)  # around the direction of the corner
_CAMERA_PITCH = (math.radians(-14.0), math.radians(-4.0))
_OBJECT_SIZE = (0.3, 0.5)  # sphere and cylinder radius, half the cube side
_OBJECT_DISTANCE = (2.0, 5.5)  # along the floor from the camera
_OBJECT_AZIMUTH = math.radians(22.0)  # half-range around the camera's yaw
_GAP = 0.1  # clearance between objects, and between an object and a wall
_VIEW_AZIMUTH = math.radians(26.0)  # half the horizontal view, less a margin
_MAX_FAILURES = 50  # rejected placements before a scene's objects are all redrawn
_EXPOSED = math.radians(2.5)  # least azimuth range of an object that nothing nearer covers

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Camera:
    """Pinhole camera at ``(x, height, z)`` (radians; ``pitch`` < 0 looks down).

    It looks along ``forward = (cos(pitch) sin(yaw), sin(pitch), cos(pitch) cos(yaw))``, with
    ``right = (cos(yaw), 0, -sin(yaw))`` and ``up = forward x right``. Pixel (row ``i``, column
    ``j``) of an ``S x S`` image sees along ``forward + tan(FIELD_OF_VIEW / 2) (a right + b up)``
    with ``a = (2 j + 1) / S - 1`` and ``b = 1 - (2 i + 1) / S``.
    """

    x: float
    z: float
    height: float
    yaw: float
    pitch: float


@dataclass(frozen=True)
class SceneObject:
    """A solid standing on the floor at ``(x, z)``.

    ``size`` is the radius of a sphere or cylinder and half the side of a cube; a cylinder is
    ``2 * size`` high. ``angle`` turns a cube about the vertical axis (radians). ``color`` is RGB
    in [0, 1].
    """

    shape: str
    x: float
    z: float
    size: float
    angle: float
    color: RGB


@dataclass(frozen=True)
class Scene:
    """Everything one image is rendered from.

    ``colors`` are the RGB colours in [0, 1] of sky, floor, wall x = 0 and wall z = 0 (entity order
    0..3); object ``k`` of ``objects`` gets entity id ``4 + k``.
    """

    camera: Camera
    colors: tuple[RGB, RGB, RGB, RGB]
    objects: tuple[SceneObject, ...]

    def __post_init__(self) -> None:
        cam = self.camera
        if not (cam.x > 0 and cam.z > 0 and 0 < cam.height < WALL_HEIGHT):
            raise ValueError(
                f"camera: must stand inside the room (x > 0, z > 0, 0 < height < {WALL_HEIGHT}), "
                f"got {cam}"
            )
        if len(self.objects) > MAX_OBJECTS:
            raise ValueError(f"objects: at most {MAX_OBJECTS} allowed, got {len(self.objects)}")
        for obj in self.objects:
            if obj.shape not in SHAPES:
                raise ValueError(f"shape: {obj.shape!r} is not one of {', '.join(SHAPES)}")
            if not obj.size > 0:
                raise ValueError(f"size: must be > 0, got {obj.size}")


# ----------------------------------------------------------------------------------------------
# Sampling: one independent random stream per image.


def sample_scene(rng: np.random.Generator, min_objects: int = 1, max_objects: int = 3) -> Scene:
    """Draw a random scene: camera, background colours and non-overlapping objects in view."""
    _check_object_counts(min_objects, max_objects)
    u = iter(rng.random(18).tolist())  # one block: drawing numbers one by one is slow
    cx, cz = _between(next(u), *_CAMERA_XZ), _between(next(u), *_CAMERA_XZ)
    camera = Camera(
        x=cx,
        z=cz,
        height=_between(next(u), *_CAMERA_HEIGHT),
        yaw=math.atan2(-cx, -cz) + _between(next(u), -_CAMERA_YAW_JITTER, _CAMERA_YAW_JITTER),
        pitch=_between(next(u), *_CAMERA_PITCH),
    )
    sky_hue, floor_hue, wall_hue = _between(next(u), 0.5, 0.65), next(u), next(u)
    other_wall_hue = (wall_hue + _between(next(u), 0.2, 0.8)) % 1.0  # clearly different
    colors = (
        _hsv_to_rgb(sky_hue, _between(next(u), 0.1, 0.35), _between(next(u), 0.85, 1.0)),
        *(
            _hsv_to_rgb(hue, _between(next(u), 0.3, 0.7), _between(next(u), 0.55, 0.9))
            for hue in (floor_hue, wall_hue, other_wall_hue)
        ),
    )
    num_objects = min_objects + int(next(u) * (max_objects - min_objects + 1))
    objects: list[SceneObject] = []
    failures = 0
    while len(objects) < num_objects:
        candidate = _sample_object(rng, camera)
        if all(_apart(candidate, other) for other in objects) and _all_exposed(
            [*objects, candidate], camera
        ):
            objects.append(candidate)
        else:
            failures += 1
        if failures == _MAX_FAILURES:  # the objects so far leave no room: place all anew
            objects, failures = [], 0
    return Scene(camera=camera, colors=colors, objects=tuple(objects))


def sample_scenes(
    n: int, seed: int = 0, min_objects: int = 1, max_objects: int = 3, start: int = 0
) -> list[Scene]:
    """Scenes ``start .. start + n - 1`` of the dataset ``seed``; scene ``i`` uses the ``i``-th
    spawned child of ``SeedSequence(seed)``, so it does not depend on ``n`` or ``start``."""
    _check_object_counts(min_objects, max_objects)
    return [
        sample_scene(
            np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,))),
            min_objects,
            max_objects,
        )
        for i in range(start, start + n)
    ]


def _sample_object(rng: np.random.Generator, camera: Camera) -> SceneObject:
    """An object at a random floor position in front of the camera and inside the room."""
    while True:
        u = rng.random(8).tolist()
        distance = _between(u[0], *_OBJECT_DISTANCE)
        azimuth = camera.yaw + _between(u[1], -_OBJECT_AZIMUTH, _OBJECT_AZIMUTH)
        hue = OBJECT_HUES[int(u[2] * len(OBJECT_HUES))]
        obj = SceneObject(
            shape=SHAPES[int(u[3] * len(SHAPES))],
            x=camera.x + distance * math.sin(azimuth),
            z=camera.z + distance * math.cos(azimuth),
            size=_between(u[4], *_OBJECT_SIZE),
            angle=u[5] * math.pi / 2,
            color=_hsv_to_rgb(hue, _between(u[6], 0.6, 0.95), _between(u[7], 0.75, 1.0)),
        )
        reach = _footprint_radius(obj) + _GAP
        if obj.x > reach and obj.z > reach:
            return obj


def _between(u: float, low: float, high: float) -> float:
    """Map ``u`` in [0, 1) to [low, high)."""
    return low + (high - low) * u


def _footprint_radius(obj: SceneObject) -> float:
    return obj.size * math.sqrt(2.0) if obj.shape == "cube" else obj.size


def _apart(a: SceneObject, b: SceneObject) -> bool:
    gap = _footprint_radius(a) + _footprint_radius(b) + _GAP
    return (a.x - b.x) ** 2 + (a.z - b.z) ** 2 > gap**2


def _all_exposed(objects: Sequence[SceneObject], camera: Camera) -> bool:
    """Whether each object shows a sliver of azimuth, at least ``_EXPOSED`` wide and inside the
    view, that no nearer object covers: so nothing is hidden behind the others.

    Angles are azimuths seen from the camera; an object covers at most its footprint circle's
    angle and shows at least the angle of the circle inscribed in its footprint.
    """
    polar = []
    for obj in objects:
        dx, dz = obj.x - camera.x, obj.z - camera.z
        distance = math.hypot(dx, dz)
        centre = (math.atan2(dx, dz) - camera.yaw + math.pi) % (2 * math.pi) - math.pi
        polar.append((distance, centre, obj))
    polar.sort(key=lambda item: item[0])
    for i, (distance, centre, _) in enumerate(polar):
        half = math.asin(polar[i][2].size / distance)
        free = [(max(centre - half, -_VIEW_AZIMUTH), min(centre + half, _VIEW_AZIMUTH))]
        for near_distance, near_centre, near in polar[:i]:
            cover = math.asin(min(_footprint_radius(near) / near_distance, 1.0))
            free = _subtract(free, near_centre - cover, near_centre + cover)
        if not any(high - low >= _EXPOSED for low, high in free):
            return False
    return True


def _subtract(
    intervals: list[tuple[float, float]], low: float, high: float
) -> list[tuple[float, float]]:
    """The parts of ``intervals`` outside ``[low, high]``."""
    parts = []
    for a, b in intervals:
        parts += [(a, min(b, low))] if a < low else []
        parts += [(max(a, high), b)] if b > high else []
    return parts


def _hsv_to_rgb(h: float, s: float, v: float) -> RGB:
    """HSV (each in [0, 1]) to RGB in [0, 1] (Smith 1978)."""
    i = int(h * 6.0) % 6
    f = h * 6.0 - math.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


def _check_object_counts(min_objects: int, max_objects: int) -> None:
    if not 0 <= min_objects <= max_objects <= MAX_OBJECTS:
        raise ValueError(
            f"min_objects, max_objects: need 0 <= min_objects <= max_objects <= {MAX_OBJECTS}, "
            f"got min_objects={min_objects}, max_objects={max_objects}"
        )


def _check_image_size(image_size: int) -> None:
    if not (
        isinstance(image_size, int) and image_size >= 16 and image_size & (image_size - 1) == 0
    ):
        raise ValueError(f"image_size: must be a power of two >= 16, got {image_size!r}")


# ----------------------------------------------------------------------------------------------
# Rendering: one ray per pixel centre, vectorised over the images of a chunk.


@functools.lru_cache(maxsize=8)
def _camera_rays(image_size: int) -> np.ndarray:
    """Unit ray directions in the camera frame (right, up, forward), shape ``[3, H * W]``."""
    half = math.tan(FIELD_OF_VIEW / 2)
    centres = (np.arange(image_size) + 0.5) / image_size * 2.0 - 1.0
    up, right = np.meshgrid(-centres * half, centres * half, indexing="ij")
    rays = np.stack([right.ravel(), up.ravel(), np.ones(image_size * image_size)])
    return (rays / np.linalg.norm(rays, axis=0)).astype(np.float32)


def _camera_basis(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Columns right, up, forward of each camera in world coordinates, shape ``[B, 3, 3]``."""
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    zero = np.zeros_like(yaw)
    right = np.stack([cy, zero, -sy], axis=-1)
    forward = np.stack([cp * sy, sp, cp * cy], axis=-1)
    up = np.cross(forward, right)
    return np.stack([right, up, forward], axis=-1)


def _shade(cosine: np.ndarray) -> np.ndarray:
    """Brightness of a surface whose normal makes ``cosine`` with the light."""
    return AMBIENT + (1.0 - AMBIENT) * np.maximum(cosine, 0.0)


class _Canvas:
    """Nearest surface per pixel: ``depth``, entity ``label`` and brightness ``shade``, ``[B, P]``.

    It starts as the empty room (:func:`_room`); objects are then drawn with a depth test.
    """

    def __init__(self, depth: np.ndarray, label: np.ndarray, shade: np.ndarray) -> None:
        self.depth, self.label, self.shade = depth, label, shade

    def draw(self, where: np.ndarray, depth: np.ndarray, label: int, shade: np.ndarray) -> None:
        """Let surface ``label`` win the pixels ``where`` (flat indices into ``[B * P]``, no
        repeats) where it is nearer."""
        old_depth = np.take(self.depth, where)
        nearer = depth < old_depth
        where = where[nearer]
        self.depth.flat[where] = depth[nearer]
        self.label.flat[where] = label
        self.shade.flat[where] = shade[nearer]


def render_scenes(scenes: Sequence[Scene], image_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Render scenes together: ``images`` uint8 ``[B, H, W, 3]``, ``labels`` uint8 ``[B, H, W]``."""
    _check_image_size(image_size)
    batch, pixels = len(scenes), image_size * image_size
    cams = np.array([[s.camera.x, s.camera.height, s.camera.z] for s in scenes], np.float32)
    yaw = np.array([s.camera.yaw for s in scenes])
    pitch = np.array([s.camera.pitch for s in scenes])
    basis = _camera_basis(yaw, pitch).astype(np.float32)
    rays = (basis @ _camera_rays(image_size)).reshape(batch, 3, pixels)
    canvas = _room(cams, rays)
    _draw_objects(canvas, scenes, cams, basis, rays)
    palette = np.zeros((batch, NUM_ENTITIES, 3), np.float32)  # empty slots: never shown
    for b, scene in enumerate(scenes):
        palette[b, : FIRST_OBJECT + len(scene.objects)] = scene.colors + tuple(
            o.color for o in scene.objects
        )
    flat = canvas.label + (NUM_ENTITIES * np.arange(batch))[:, None]
    images = np.take(palette.reshape(-1, 3), flat, axis=0)
    images *= (255.0 * canvas.shade)[..., None]
    images += 0.5  # round half up: the cast truncates
    images = images.astype(np.uint8)
    shape = (batch, image_size, image_size)
    return images.reshape(*shape, 3), canvas.label.reshape(shape)


def render_scene(scene: Scene, image_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Render one scene: ``image`` uint8 ``[H, W, 3]``, ``labels`` uint8 ``[H, W]``."""
    images, labels = render_scenes([scene], image_size)
    return images[0], labels[0]


def _room(cams: np.ndarray, rays: np.ndarray) -> _Canvas:
    """The empty room: sky (lighter towards the horizon), floor (darker with distance) and the
    two walls (darker towards the floor).

    Works with inverse distances ``1 / t`` to the planes y = 0, x = 0 and z = 0 (positive only
    ahead of the camera; the nearest plane has the largest). The camera is inside the room and
    below the top of the walls, so a ray that crosses a wall plane before the floor hits that
    wall unless it passes above it (then it rises into the sky); no lateral bounds are needed.
    """
    dx, dy, dz = rays[:, 0], rays[:, 1], rays[:, 2]
    cx, cy, cz = (cams[:, i, None] for i in range(3))
    inv_x, inv_y, inv_z = dx * (-1.0 / cx), dy * (-1.0 / cy), dz * (-1.0 / cz)
    on_x = inv_x > inv_z
    inv_wall = np.maximum(inv_x, inv_z)
    on_floor = inv_y > inv_wall
    sky = dy > (WALL_HEIGHT - cy) * inv_wall  # above the top of the first wall met
    sky &= ~on_floor
    with np.errstate(divide="ignore"):
        depth = 1.0 / np.maximum(inv_y, inv_wall)
    depth[sky] = np.inf
    label = np.where(on_x, np.uint8(WALL_X), np.uint8(WALL_Z))
    label[on_floor] = FLOOR
    label[sky] = SKY
    shade = np.where(on_x, np.float32(_shade(LIGHT[0])), np.float32(_shade(LIGHT[2])))
    shade *= 0.85 + (0.15 / WALL_HEIGHT) * (cy + dy * depth)
    floor_shade = _shade(LIGHT[1]) * (1.0 - 0.3 * np.minimum(depth * (1 / 12.0), 1.0))
    np.copyto(shade, floor_shade, where=on_floor)
    np.copyto(shade, 1.0 - 0.3 * dy, where=sky)
    return _Canvas(depth, label, shade)


def _draw_objects(
    canvas: _Canvas, scenes: Sequence[Scene], cams: np.ndarray, basis: np.ndarray, rays: np.ndarray
) -> None:
    """Draw object slot ``k`` of every scene, grouped by shape so that each group is one array
    op over the pixels that can see its objects (:func:`_windows`)."""
    intersect = {"cube": _hit_cube, "sphere": _hit_sphere, "cylinder": _hit_cylinder}
    pixels = rays.shape[-1]
    for k in range(MAX_OBJECTS):
        for shape, hit in intersect.items():
            rows = [
                b
                for b, s in enumerate(scenes)
                if len(s.objects) > k and s.objects[k].shape == shape
            ]
            if not rows:
                continue
            rows = np.array(rows)
            objs = [scenes[b].objects[k] for b in rows]
            params = np.array([[o.x, o.z, o.size, o.angle] for o in objs], np.float32)
            foot = np.stack([params[:, 0], np.zeros(len(objs), np.float32), params[:, 1]], 1)
            size = params[:, 2]
            centre = foot + np.outer(size, [0.0, 1.0, 0.0]).astype(np.float32)
            bound = _BOUNDING[shape] * size
            owner, pixel = _windows(centre - cams[rows], bound, basis[rows], math.isqrt(pixels))
            first_ray = rows[owner] * (3 * pixels) + pixel
            direction = [np.take(rays, first_ray + i * pixels) for i in range(3)]
            origin = [np.take(cams[rows, i] - foot[:, i], owner) for i in range(3)]
            depth, cosine = hit(origin, direction, size[owner], params[owner, 3])
            canvas.draw(rows[owner] * pixels + pixel, depth, FIRST_OBJECT + k, _shade(cosine))


#: Radius of the sphere around each shape's centre that holds it, in units of its ``size``.
_BOUNDING = {"cube": math.sqrt(3.0), "sphere": 1.0, "cylinder": math.sqrt(2.0)}


def _windows(
    offset: np.ndarray, radius: np.ndarray, basis: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels whose rays can meet spheres at ``offset`` ``[M, 3]`` from their cameras: a
    rectangle for each sphere, returned flat as ``owner`` (sphere index) and ``pixel`` (index into
    ``H * W``), both ``[N]``.

    Seen in the camera's (right, forward) plane a sphere is a disk, which a ray can meet only
    between the two tangents from the camera; likewise in the (up, forward) plane.
    """
    right, up, forward = np.einsum("mij,mi->jm", basis, offset).astype(np.float64)
    half = math.tan(FIELD_OF_VIEW / 2)

    def span(lateral: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First and last pixel (1 pixel margin) between the tangents, counted along +lateral."""
        centre = np.arctan2(lateral, forward)
        spread = np.arcsin(radius / np.hypot(lateral, forward))
        low, high = (np.tan(centre + sign * spread) / half for sign in (-1, 1))
        first = np.ceil((low + 1) * size / 2 - 0.5).astype(int) - 1
        last = np.floor((high + 1) * size / 2 - 0.5).astype(int) + 1
        return np.clip(first, 0, size), np.clip(last, -1, size - 1)

    with np.errstate(invalid="ignore"):  # NaN where the camera is inside a sphere: see below
        col_first, col_last = span(right)
        up_first, up_last = span(up)
    behind = forward <= radius  # reaches behind the camera: the whole image
    col_first[behind] = up_first[behind] = 0
    col_last[behind] = up_last[behind] = size - 1
    width = np.maximum(col_last - col_first + 1, 0)
    area = width * np.maximum(up_last - up_first + 1, 0)
    owner = np.repeat(np.arange(len(offset)), area)
    within = np.arange(len(owner)) - np.repeat(np.cumsum(area) - area, area)
    row = size - 1 - up_last[owner] + within // width[owner]  # rows count downwards
    col = col_first[owner] + within % width[owner]
    return owner, row * size + col


def _hit_sphere(origin, direction, size, angle):
    """Ray-sphere distance and normal-light cosine for rays from ``origin`` (relative to the
    foot of the sphere) along unit ``direction``; the sphere rests on the floor."""
    del angle  # a sphere looks the same from every angle
    ox, oy, oz = origin[0], origin[1] - size, origin[2]  # relative to the centre
    dx, dy, dz = direction
    half_b = dx * ox + dy * oy + dz * oz
    disc = half_b * half_b - (ox * ox + oy * oy + oz * oz - size * size)
    depth = -half_b - np.sqrt(np.maximum(disc, 0.0))
    depth = np.where((disc >= 0) & (depth > 0), depth, np.inf)
    hit = np.where(depth < np.inf, depth, 0.0)  # finite everywhere
    lx, ly, lz = LIGHT
    normal_x, normal_y, normal_z = ox + hit * dx, oy + hit * dy, oz + hit * dz
    return depth, (normal_x * lx + normal_y * ly + normal_z * lz) / size


def _hit_cylinder(origin, direction, size, angle):
    """Ray-cylinder distance (side or top cap) and normal-light cosine; the cylinder stands on
    the floor at ``origin``'s reference point and is ``2 * size`` high."""
    del angle  # rotationally symmetric
    ox, oy, oz = origin
    dx, dy, dz = direction
    height = 2.0 * size
    a = dx * dx + dz * dz
    half_b = dx * ox + dz * oz
    disc = half_b * half_b - a * (ox * ox + oz * oz - size * size)
    with np.errstate(divide="ignore", invalid="ignore"):
        side = (-half_b - np.sqrt(np.maximum(disc, 0.0))) / a
        y = oy + side * dy
        side = np.where((disc >= 0) & (side > 0) & (y >= 0) & (y <= height), side, np.inf)
        top = (height - oy) / dy
    px, pz = ox + top * dx, oz + top * dz
    top = np.where((top > 0) & (px * px + pz * pz <= size * size), top, np.inf)
    on_side = side < top
    depth = np.minimum(side, top)
    hit_side = np.where(on_side, side, 0.0)  # finite everywhere
    radial = ((ox + hit_side * dx) * LIGHT[0] + (oz + hit_side * dz) * LIGHT[2]) / size
    cosine = np.where(on_side, radial, np.float32(LIGHT[1]))
    return depth, cosine


def _hit_cube(origin, direction, size, angle):
    """Ray-box distance (slab method) and normal-light cosine; the cube stands on the floor at
    ``origin``'s reference point, turned by ``angle`` about the vertical."""
    cos, sin = np.cos(angle), np.sin(angle)
    ox, oy, oz = origin
    dx, dy, dz = direction
    # Into the cube's frame (its axes turned by ``angle`` about y); the box is [-s, s] x [0, 2s].
    local = [
        (cos * ox - sin * oz, cos * dx - sin * dz),
        (oy - size, dy),
        (sin * ox + cos * oz, sin * dx + cos * dz),
    ]
    light = [
        cos * LIGHT[0] - sin * LIGHT[2],
        np.full_like(cos, LIGHT[1]),
        sin * LIGHT[0] + cos * LIGHT[2],
    ]
    near = np.full(dx.shape, -np.inf, np.float32)
    far = np.full(dx.shape, np.inf, np.float32)
    cosine = np.zeros_like(near)
    with np.errstate(divide="ignore", invalid="ignore"):
        for (o, d), lit in zip(local, light, strict=True):
            inv = 1.0 / d
            t1, t2 = (-size - o) * inv, (size - o) * inv
            enter = np.minimum(t1, t2)
            entering_here = enter > near
            near = np.where(entering_here, enter, near)
            far = np.minimum(far, np.maximum(t1, t2))
            cosine = np.where(entering_here, -np.sign(d) * lit, cosine)
    depth = np.where((near <= far) & (near > 0), near, np.inf)
    return depth, cosine


# ----------------------------------------------------------------------------------------------
# Datasets.


def generate_objects_room_like(
    n: int,
    image_size: int = 64,
    seed: int = 0,
    min_objects: int = 1,
    max_objects: int = 3,
    start: int = 0,
    chunk_size: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` ObjectsRoom-like images and entity maps.

    Returns ``images`` uint8 ``[n, H, W, 3]`` and ``labels`` uint8 ``[n, H, W]`` with ids 0 sky,
    1 floor, 2 and 3 walls, ``4 + k`` object ``k``. Ids of empty slots are absent; every placed
    object shows (at 16 px a sliver can fall between pixel centres: about 0.3% of images).
    Image ``i`` is image ``start + i`` of the dataset ``seed``: ``generate(10)[:5] == generate(5)``
    and ``generate(5, start=5) == generate(10)[5:]``. ``chunk_size`` images are rendered at once.
    """
    if n < 0:
        raise ValueError(f"n: must be >= 0, got {n}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size: must be >= 1, got {chunk_size}")
    _check_image_size(image_size)
    _check_object_counts(min_objects, max_objects)
    images = np.empty((n, image_size, image_size, 3), np.uint8)
    labels = np.empty((n, image_size, image_size), np.uint8)
    for first in range(0, n, chunk_size):
        count = min(chunk_size, n - first)
        scenes = sample_scenes(count, seed, min_objects, max_objects, start + first)
        images[first : first + count], labels[first : first + count] = render_scenes(
            scenes, image_size
        )
    return images, labels


def generate_objects_room_like_masks(
    n: int, image_size: int = 64, seed: int = 0, min_objects: int = 1, max_objects: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`generate_objects_room_like`, with masks in ObjectsRoom's TFRecord layout:
    ``images`` uint8 ``[n, H, W, 3]`` and ``masks`` uint8 ``[n, 7, H, W, 1]``, 0 or 255."""
    images, labels = generate_objects_room_like(n, image_size, seed, min_objects, max_objects)
    return images, labels_to_masks(labels, NUM_ENTITIES)


# ----------------------------------------------------------------------------------------------
# Picture for the docs.


def save_preview(path: str, seed: int = 0, image_size: int = 64, count: int = 16) -> None:
    """Save a grid of ``count`` images, each next to its entity map, to ``path`` (PNG)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    images, labels = generate_objects_room_like(count, image_size, seed)
    entity_colors = ["#9ecae1", "#8c6d31", "#e7ba52", "#ad494a", "#1f77b4", "#2ca02c", "#d62728"]
    cmap = ListedColormap(entity_colors)
    cols = 4
    rows = math.ceil(count / cols)
    fig = Figure(figsize=(2 * cols * 1.4, rows * 1.5))
    axes = fig.subplots(rows, 2 * cols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for i in range(count):
        row, col = divmod(i, cols)
        axes[row, 2 * col].imshow(images[i], interpolation="nearest")
        axes[row, 2 * col + 1].imshow(
            labels[i], cmap=cmap, vmin=-0.5, vmax=NUM_ENTITIES - 0.5, interpolation="nearest"
        )
    names = ["sky", "floor", "wall x=0", "wall z=0", "object 1", "object 2", "object 3"]
    handles = [Patch(color=c) for c in entity_colors]
    fig.legend(handles, names, loc="lower center", ncol=NUM_ENTITIES, frameon=False, fontsize=8)
    fig.suptitle(f"ObjectsRoom-like scenes (seed {seed}) and their entity maps", fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    fig.savefig(path, dpi=100)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: write the preview picture."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/objects_room_like.png", help="PNG to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args(argv)
    save_preview(args.out, seed=args.seed, image_size=args.image_size)


if __name__ == "__main__":
    main()
