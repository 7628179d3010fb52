"""Persistent classes: pickled with the full source of their defining module, rebuilt by executing it.

Protocol (as described in omnibench's docs/real-checkpoints.md section 2.3): an instance pickles as
``_reconstruct_persistent_obj(meta)`` with ``meta = {type, version=6, module_src, class_name, state}``;
unpickling executes ``module_src`` in a fresh module, re-decorates the class, and restores ``state``.
"""

import copy
import inspect
import sys
import types
import uuid

import dnnlib

_VERSION = 6
_sources = {}  # module -> its source text
_modules_by_source = {}  # source text -> executed module
_wrappers = set()  # the persistent classes made here
import_hooks = []


def persistent_class(cls):
    """Decorate ``cls`` so that its instances pickle with their module's source (once: a persistent class is
    returned unchanged)."""
    if cls in _wrappers:
        return cls
    module = sys.modules[cls.__module__]
    if module not in _sources:
        _sources[module] = inspect.getsource(module)
    source = _sources[module]

    class Persistent(cls):
        _orig_module_src = source
        _orig_class_name = cls.__name__

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._init_args = copy.deepcopy(args)
            self._init_kwargs = copy.deepcopy(kwargs)

        @property
        def init_args(self):
            return copy.deepcopy(self._init_args)

        @property
        def init_kwargs(self):
            return dnnlib.EasyDict(copy.deepcopy(self._init_kwargs))

        def __reduce__(self):
            meta = {"type": "class", "version": _VERSION, "module_src": self._orig_module_src,
                    "class_name": self._orig_class_name, "state": dict(self.__dict__)}
            return _reconstruct_persistent_obj, (meta,), None

    Persistent.__name__ = cls.__name__
    Persistent.__qualname__ = cls.__qualname__
    _wrappers.add(Persistent)
    return Persistent


def _module_from_source(source):
    module = _modules_by_source.get(source)
    if module is None:
        name = f"_imported_module_{uuid.uuid4().hex}"
        module = types.ModuleType(name)
        sys.modules[name] = module
        _sources[module] = source
        exec(source, module.__dict__)  # noqa: S102 - this is what the protocol does on load
        _modules_by_source[source] = module
    return module


def _reconstruct_persistent_obj(meta):
    meta = dnnlib.EasyDict(meta)
    meta.state = dnnlib.EasyDict(meta.state)
    for hook in import_hooks:
        meta = hook(meta) or meta
    assert meta.version == _VERSION, meta.version
    module = _module_from_source(meta.module_src)
    cls = persistent_class(module.__dict__[meta.class_name])
    obj = cls.__new__(cls)
    obj.__dict__.update(meta.state)
    return obj
