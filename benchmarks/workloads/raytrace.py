"""pyperformance-style `raytrace`: a small ray tracer (spheres and a plane, a point light,
shadows and one reflection), written afresh for this benchmark. Float arithmetic in many
tiny vector methods (~150k calls per run)."""

import math


class Vec:
    __slots__ = ("x", "y", "z")

    def __init__(self, x, y, z):
        self.x, self.y, self.z = x, y, z

    def dot(self, o):
        return self.x * o.x + self.y * o.y + self.z * o.z

    def add(self, o):
        return Vec(self.x + o.x, self.y + o.y, self.z + o.z)

    def sub(self, o):
        return Vec(self.x - o.x, self.y - o.y, self.z - o.z)

    def scale(self, k):
        return Vec(self.x * k, self.y * k, self.z * k)

    def length(self):
        return math.sqrt(self.dot(self))

    def normalized(self):
        return self.scale(1.0 / self.length())

    def reflect(self, normal):
        return self.sub(normal.scale(2 * self.dot(normal)))


class Ray:
    def __init__(self, origin, direction):
        self.origin, self.direction = origin, direction.normalized()

    def at(self, t):
        return self.origin.add(self.direction.scale(t))


class Sphere:
    def __init__(self, centre, radius, colour, shine):
        self.centre, self.radius, self.colour, self.shine = centre, radius, colour, shine

    def hit(self, ray):
        oc = ray.origin.sub(self.centre)
        b = oc.dot(ray.direction)
        c = oc.dot(oc) - self.radius * self.radius
        disc = b * b - c
        if disc < 0:
            return None
        t = -b - math.sqrt(disc)
        return t if t > 1e-6 else None

    def normal_at(self, p):
        return p.sub(self.centre).normalized()


class Plane:
    def __init__(self, point, normal, colour, shine):
        self.point, self.normal, self.colour, self.shine = point, normal.normalized(), colour, shine

    def hit(self, ray):
        d = ray.direction.dot(self.normal)
        if abs(d) < 1e-9:
            return None
        t = self.point.sub(ray.origin).dot(self.normal) / d
        return t if t > 1e-6 else None

    def normal_at(self, p):
        return self.normal


class Scene:
    def __init__(self):
        self.objects = [
            Sphere(Vec(0, 1, 5), 1.0, Vec(0.9, 0.2, 0.2), 0.3),
            Sphere(Vec(-1.8, 0.7, 6), 0.7, Vec(0.2, 0.9, 0.2), 0.2),
            Sphere(Vec(1.6, 0.5, 4), 0.5, Vec(0.2, 0.2, 0.9), 0.5),
            Plane(Vec(0, 0, 0), Vec(0, 1, 0), Vec(0.8, 0.8, 0.8), 0.1),
        ]
        self.light = Vec(-3, 6, 0)

    def nearest(self, ray):
        best, best_t = None, math.inf
        for obj in self.objects:
            t = obj.hit(ray)
            if t is not None and t < best_t:
                best, best_t = obj, t
        return best, best_t

    def trace(self, ray, depth):
        obj, t = self.nearest(ray)
        if obj is None:
            return Vec(0.1, 0.1, 0.2)
        p = ray.at(t)
        n = obj.normal_at(p)
        to_light = self.light.sub(p)
        shadow, st = self.nearest(Ray(p, to_light))
        lit = shadow is None or st > to_light.length()
        diffuse = max(0.0, n.dot(to_light.normalized())) if lit else 0.0
        colour = obj.colour.scale(0.1 + 0.9 * diffuse)
        if depth > 0 and obj.shine > 0:
            bounce = self.trace(Ray(p, ray.direction.reflect(n)), depth - 1)
            colour = colour.scale(1 - obj.shine).add(bounce.scale(obj.shine))
        return colour


def run(width=40, height=30):
    scene = Scene()
    eye = Vec(0, 1, -2)
    total = 0.0
    for j in range(height):
        for i in range(width):
            target = Vec((i - width / 2) / width * 2, (height / 2 - j) / height * 2 + 1, 0)
            total += scene.trace(Ray(eye, target.sub(eye)), 1).x
    return round(total, 6)
