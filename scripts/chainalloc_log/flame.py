"""The HTML report's flame graph: bytes by call stack, one picture per measure (allocated,
leaked, live at the peak), switched by radio buttons and CSS (the report has no script).

The root, at the bottom, is every byte of the measure; above a frame are the frames it
called, so each stack runs from `main` (or a thread's start) up to the function that
called malloc. A frame's width is its share of the bytes. Frames are merged by the same
key as sites (sites.frame_key): function, file and line, or module and offset. Each frame's
<title> (the browser's tooltip) holds its figures and its whole stack, innermost first.

With several logs, the run's section adds one graph of all processes (run_flame_section)."""

import zlib

from .humanize import human
from .sites import frame_key, frame_text
from .svg import esc

MEASURES = (('bytes', 'allocated'), ('leaked_bytes', 'leaked'),
            ('peak_bytes', 'live at the peak'))
# Across processes the third figure is each process's bytes live at its own peak, added up:
# the processes need not peak together, so it is not a peak of the run, only a bound on it.
RUN_MEASURES = MEASURES[:2] + (('peak_bytes', "sum of each process's peak"),)
PROGRAM_FILL = '#a9c8e6'   # a program's box in the graph of all processes: not a function
ROW = 17             # pixels per stack level
MIN_WIDTH = 0.5      # narrower frames are not drawn (their bytes stay in their parents)
CHAR = 7.0           # pixels per character of the 12px labels, roughly
MAX_LEVELS = 200     # frames drawn of a stack, innermost kept (stacks=N is at most 128)
TIP_FRAMES = 160     # frames listed in a tooltip


class Node:
    __slots__ = ('name', 'text', 'value', 'children', 'fill')

    def __init__(self, name, text, fill=None):
        self.name, self.text, self.value, self.children = name, text, 0, {}
        self.fill = fill   # None: coloured by its name (_color)


def _short(f):
    """A frame's name on its box: the function, else module+offset (or the address)."""
    if f['function']:
        return f['function']
    return frame_text(f).split('  ')[0]


def _title(f):
    """A frame in its tooltip: 'function at file:line', 'function in module', or
    'module+0xoffset'."""
    fn, _, where = frame_text(f).partition('  ')
    if not where:
        return fn
    return '%s %s %s' % (fn, 'at' if f['file'] else 'in', where)


def _site_path(r):
    """A site's frames as (key, box name, tooltip text), callers first."""
    frames = list(reversed(r['stack']))
    if not frames:
        return [(('none',), '(no call stack)', '(no call stack)')]
    return [(frame_key(f), _short(f), _title(f)) for f in frames]


def flame_tree(sites, key, root=None):
    """Sites (sites.site_table rows) -> the root Node of `key`'s bytes, callers first. With
    `root`, the sites are added to that tree (frames merged by frame_key) and it is returned."""
    if root is None:
        root = Node('all', 'all')
    for r in sites:
        value = r[key]
        if value <= 0:
            continue
        root.value += value
        node = root
        for k, name, text in _site_path(r)[-MAX_LEVELS:]:
            child = node.children.get(k)
            if child is None:
                child = node.children[k] = Node(name, text)
            child.value += value
            node = child
    return root


def by_program(files):
    """[(command, [files])] in the order the files came: the processes of each program."""
    groups = {}
    for d in files:
        groups.setdefault(d['command'], []).append(d)
    return list(groups.items())


def run_flame_tree(files, key):
    """The sites of every process in one tree, with a level per program (command) between
    the root and the stacks. Not a plain merge: every program's stacks start at main (or
    _start), so merged they would stack one program's callees on another's main in boxes
    no program has, hiding which program allocated; perf-based flame graphs put the process
    name at the bottom for the same reason. Processes of one program (forked children,
    workers) do merge: summing those is what the graph is for. Frames merge by frame_key
    (function, file:line, or module+offset), never by address or stack id, which are per
    process."""
    root = Node('all', 'all')
    for command, group in by_program(files):
        node = Node(command, '%s (%d process%s)' % (command, len(group),
                                                    '' if len(group) == 1 else 'es'),
                    PROGRAM_FILL)
        for d in group:
            flame_tree(d.get('_sites') or [], key, node)
        if node.value:
            root.children[('program', command)] = node
            root.value += node.value
    return root


def _color(name):
    """A warm colour that stays the same for a function in every graph."""
    if name in ('all', '(no call stack)') or '+0x' in name or name.startswith('0x'):
        return '#c8c8c8'
    h = zlib.crc32(name.encode())
    return 'hsl(%d,%d%%,%d%%)' % (h % 50, 65 + (h >> 8) % 20, 58 + (h >> 16) % 10)


def _depth(root):
    """Levels of the tree (iterative: a log may hold stacks of any depth)."""
    deepest, todo = 0, [(root, 1)]
    while todo:
        node, level = todo.pop()
        deepest = max(deepest, level)
        todo += [(c, level + 1) for c in node.children.values()]
    return deepest


def flame_svg(root, measure, width=1080):
    """One flame graph as inline SVG; `measure` is written as data-measure."""
    levels = _depth(root)
    height = levels * ROW + 2
    out = []

    todo = [(root, 0.0, 0, [])]   # depth first, by hand: stacks may be deep
    while todo:
        node, x, level, stack = todo.pop()
        w = width * node.value / root.value
        if w < MIN_WIDTH:
            continue
        stack = [node.text] + stack
        y = height - 1 - (level + 1) * ROW
        share = 100.0 * node.value / root.value
        frames = stack[:-1]   # innermost first, without 'all'
        listed = '\n'.join(frames[:TIP_FRAMES]) + (
            '\n... %d more' % (len(frames) - TIP_FRAMES) if len(frames) > TIP_FRAMES else '')
        tip = '%s\n%s (%s bytes), %.1f%% of all\n\n%s' % (
            node.text, human(node.value), '{:,}'.format(node.value), share,
            listed if level else 'every stack')
        label = ''
        room = int((w - 6) / CHAR)
        if room >= 3:
            label = node.name if len(node.name) <= room else node.name[:room - 1] + '\u2026'
        out.append('<g class="fgn" data-value="%d" data-depth="%d"><title>%s</title>'
                   '<rect x="%.2f" y="%d" width="%.2f" height="%d" rx="2" fill="%s"/>%s</g>'
                   % (node.value, level, esc(tip), x, y, w, ROW - 1,
                      node.fill or _color(node.name),
                      '<text x="%.1f" y="%d">%s</text>' % (x + 3, y + ROW - 5, esc(label))
                      if label else ''))
        cx = x
        for child in sorted(node.children.values(), key=lambda c: (c.name, c.text)):
            todo.append((child, cx, level + 1, stack))
            cx += width * child.value / root.value
    return ('<svg class="flamesvg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" '
            'data-measure="%s" data-total="%d">%s</svg>'
            % (width, height, width, height, measure, root.value, ''.join(out)))


def _graphs(roots, measures, name):
    """The radio buttons (first checked) and one graph per measure; `name` makes the radio
    group unique in the page."""
    out = ['<div class="flame">']
    for i, (key, words) in enumerate(measures):
        out.append('<input type="radio" class="m%d" name="%s" id="%s-%s"%s>'
                   '<label for="%s-%s">%s</label>'
                   % (i, name, name, key, ' checked' if i == 0 else '', name, key, words))
    for i, ((key, words), root) in enumerate(zip(measures, roots)):
        body = flame_svg(root, key) if root.value else \
            '<p>Nothing with a call stack (%s: 0 bytes).</p>' % words
        out.append('<div class="fg fg%d">%s</div>' % (i, body))
    out.append('</div>')
    return ''.join(out)


def flame_section(sites, name):
    """The flame graphs of a process's sites (sites.site_table) with the switch between the
    measures; '' without call stacks."""
    if not sites:
        return ''
    return ''.join([
        '<h3 id="%s">Flame graph</h3>' % name,
        '<p class="note">Bytes by call stack: the bottom row is all of them, above each '
        'frame the frames it called, up to the one that called malloc; width is bytes. '
        'Hover a frame for its bytes and its whole stack.</p>',
        _graphs([flame_tree(sites, key) for key, _ in MEASURES], MEASURES, name)])


def run_flame_section(files, name='fg-run'):
    """One flame graph per measure of all the processes' sites (files with '_sites', as
    cmd_plot adds them); '' when no process has call stacks."""
    with_stacks = [d for d in files if d.get('_sites')]
    if not with_stacks:
        return ''
    missing = len(files) - len(with_stacks)
    return ''.join([
        '<h3 id="%s">Flame graph of all processes</h3>' % name,
        '<p class="note">Bytes by call stack in every process: above the bottom row, a box '
        'per program (its processes added up), then the stacks, merged by function and '
        'file:line (addresses differ between processes). The third graph adds up the bytes '
        'live at each process\'s own peak: the processes need not peak at the same time, so '
        'it is not a peak of the whole run. Hover a frame for its bytes and its whole '
        'stack.%s</p>' % (' %d process%s without call stacks %s not in it.'
                          % (missing, '' if missing == 1 else 'es',
                             'is' if missing == 1 else 'are') if missing else ''),
        _graphs([run_flame_tree(files, key) for key, _ in RUN_MEASURES], RUN_MEASURES,
                name)])


FLAME_STYLE = '''
.flame input{margin-left:12px}.flame .fg{display:none;margin-top:6px}
.flame input.m0:checked~.fg0,.flame input.m1:checked~.fg1,.flame input.m2:checked~.fg2{display:block}
.flamesvg text{font-size:12px;font-family:monospace;pointer-events:none}
.flamesvg g.fgn:hover rect{stroke:#000;stroke-width:1}
'''
