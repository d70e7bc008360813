"""What a real program passes: a small web application -- a URL router, request headers, a
config, a template engine and an escaper -- handling a fixed list of requests (~73k calls a
run). Its calls pass what a web framework's calls pass: str arguments and results (names,
keys, paths, header values; most of them literals, interned and passed again and again, some
made per request), dicts looked up by str keys, keyword arguments, small lists and tuples of str.

It stands for flask's own test suite recorded as VizTracer records (`flowtrace run --include
'*' -m pytest tests`: 2.35 M calls), where the default mode cost ~1.2-1.6x VizTracer's overhead
while the other eight workloads (ints, floats, objects) stayed under 1.0: there perf put a large
share in capturing and rendering str arguments (strings_batch, text_str_repr, capture_value,
render_slot, PyUnicode_AsUTF8AndSize; session 20's TEAM.md). Deterministic: no clock, no
randomness, no I/O."""

ROUTES = [
    ("/", "index", ("GET",)),
    ("/login", "auth.login", ("GET", "POST")),
    ("/logout", "auth.logout", ("GET",)),
    ("/user/<name>", "user.profile", ("GET",)),
    ("/user/<name>/posts", "user.posts", ("GET",)),
    ("/post/<int:id>", "blog.post", ("GET",)),
    ("/post/<int:id>/edit", "blog.edit", ("GET", "POST")),
    ("/static/<path:filename>", "static", ("GET",)),
]

CONFIG = {"APPLICATION_ROOT": "/", "SERVER_NAME": "localhost", "PREFERRED_URL_SCHEME": "http",
          "SESSION_COOKIE_NAME": "session", "TEMPLATES_AUTO_RELOAD": "no", "DEBUG": "off"}

TEMPLATES = {
    "index": "<h1>{title}</h1><p>Hello, {user}!</p>",
    "auth.login": "<form action='{action}'>{title}</form>",
    "auth.logout": "<p>Bye, {user}</p>",
    "user.profile": "<h2>{name}</h2><p>{title} of {user}</p>",
    "user.posts": "<ul>{name}: {title}</ul>",
    "blog.post": "<article id='{id}'>{title} by {user}</article>",
    "blog.edit": "<form>{id} {title}</form>",
    "static": "{filename}",
}

NAMES = ["alice", "bob", "carol", "dave", "eve"]
PATHS = ["/", "/login", "/logout", "/user/alice", "/user/bob/posts", "/post/12", "/post/7/edit",
         "/static/css/site.css", "/user/carol", "/post/3", "/nope"]
HEADERS = {"host": "localhost", "user-agent": "werkzeug/3.0", "accept": "text/html",
           "cookie": "session=abc123", "content-type": "text/plain"}


def split_path(path):
    return [part for part in path.split("/") if part]


def compile_rule(rule):
    parts = []
    for part in split_path(rule):
        if part.startswith("<"):
            conv, _, name = part[1:-1].rpartition(":")
            parts.append((conv or "default", name))
        else:
            parts.append(("static", part))
    return parts


def convert(conv, text):
    if conv == "int":
        return int(text) if text.isdigit() else None
    return text


def match_rule(parts, segments):
    if len(parts) != len(segments) and not (parts and parts[-1][0] == "path"):
        return None
    args = {}
    for i, (conv, name) in enumerate(parts):
        if i >= len(segments):
            return None
        if conv == "static":
            if name != segments[i]:
                return None
        elif conv == "path":
            args[name] = "/".join(segments[i:])
            return args
        else:
            value = convert(conv, segments[i])
            if value is None:
                return None
            args[name] = value
    return args


class Router:
    def __init__(self, routes):
        self.rules = [(compile_rule(rule), endpoint, methods) for rule, endpoint, methods in routes]

    def match(self, path, method="GET"):
        segments = split_path(path)
        for parts, endpoint, methods in self.rules:
            args = match_rule(parts, segments)
            if args is not None and allowed(method, methods):
                return endpoint, args
        return None, {}


def allowed(method, methods):
    return method in methods


def get_header(headers, name, default=None):
    return headers.get(name.lower(), default)


def config_get(config, key, default=None):
    return config.get(key, default)


def escape(text):
    if not isinstance(text, str):
        text = str(text)
    for bad, good in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("'", "&#39;")):
        if bad in text:
            text = text.replace(bad, good)
    return text


def lookup(context, name):
    value = context.get(name, "")
    return escape(value)


def render(template, **context):
    source = TEMPLATES[template]
    out = []
    pos = 0
    while True:
        start = source.find("{", pos)
        if start < 0:
            break
        end = source.find("}", start)
        out.append(source[pos:start])
        out.append(lookup(context, source[start + 1:end]))
        pos = end + 1
    out.append(source[pos:])
    return "".join(out)


def url_for(router, endpoint, **values):
    for parts, name, _ in router.rules:
        if name == endpoint:
            segs = [str(values.get(n, n)) if conv != "static" else n for conv, n in parts]
            return "/" + "/".join(segs)
    return "/"


def handle(router, path, method, user):
    endpoint, args = router.match(path, method)
    if endpoint is None:
        return 404, "not found"
    host = get_header(HEADERS, "Host", "localhost")
    scheme = config_get(CONFIG, "PREFERRED_URL_SCHEME", "http")
    title = config_get(CONFIG, "SERVER_NAME")
    body = render(endpoint, title=title, user=user, action=url_for(router, "auth.login"), **args)
    return 200, f"{scheme}://{host}{path} {body}"


def run():
    router = Router(ROUTES)
    total = 0
    for i in range(400):
        for j, path in enumerate(PATHS):
            status, body = handle(router, path, "POST" if j % 5 == 4 else "GET", NAMES[(i + j) % len(NAMES)])
            total += status + len(body)
    return total
