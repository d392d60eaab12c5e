"""Which pricer prices which kernel on a device, built from the device's bundle.

A device's bundle (shipped in ``tflat/data/devices`` or saved in the database by ``tflat
train``/``tflat calibrate``) holds its learned predictor and, optionally, a top-level
``"pricing"`` object with one section per further pricer. :func:`registry_for` loads a device
and :class:`PricerRegistry` routes each kernel to the pricer that prices it.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tflat.errors import PredictorError
from tflat.pricing.base import Basis, EdgePricer, Price, Pricer, PricingContext
from tflat.pricing.learned import CpuLearnedPricer, GpuLearnedPricer, LearnedPricer

if TYPE_CHECKING:
    from tflat.gpu.kernel import Kernel
    from tflat.model.ops import Graph


class FreePricer(Pricer):
    """Kernels that cost nothing per inference (folded at load time, or layout only)."""

    basis = Basis.FREE

    def price(self, ctx: PricingContext, kernels: Sequence[Kernel]) -> list[Price]:
        for k in kernels:
            if k.kind != "free":
                raise ValueError(f"kernel {k.index} ({k.kind}) is not free")
        return [Price.free(k.note) for k in kernels]


class PricerRegistry:
    """The pricers of one device and which kernel goes to which.

    Routing, first match wins:

    1. a free kernel -> :class:`FreePricer`;
    2. a kernel of a kind a section pricer names in its ``kinds`` attribute -> that pricer;
    3. a kernel the delegate refuses -> the ``cpu`` section's pricer, else the learned one
       (basis ``cpu``);
    4. a kind the learned predictor has a regressor for -> the learned pricer;
    5. any other kind -> the ``analytic`` section's pricer, else the learned one (basis
       ``analytic``: the whole-model term's per-kernel rate).

    GPU<->CPU copies at partition edges are priced by the ``edges`` section's
    :class:`~tflat.pricing.base.EdgePricer`; without one they cost nothing of their own.

    Plugging a pricer in (the hook): the device bundle's optional ``"pricing"`` object holds a
    section per pricer, e.g. ``{"analytic": {...}, "cpu": {...}, "edges": {...}}``. Section
    ``NAME`` is read by ``Class.from_dict(section)``, where ``Class`` is what
    :attr:`SECTIONS` names for it (``"module:Class"``), or else the one :class:`Pricer` or
    :class:`EdgePricer` subclass that module ``tflat.pricing.NAME`` defines. A section's
    pricer keeps the contract of :mod:`tflat.pricing.base` and takes over by its ``basis``
    (``analytic``: rule 5, ``cpu``: rule 3) or by the ``kinds`` it names (rule 2). When a
    section is absent, the learned pricer prices as it always did. Pure after construction.
    """

    #: section name -> "module:Class" when the class is not the one subclass of its module
    SECTIONS: Mapping[str, str] = {}

    def __init__(
        self,
        learned: LearnedPricer,
        sections: Mapping[str, Pricer | EdgePricer] | None = None,
    ) -> None:
        self.learned = learned
        self.free = FreePricer()
        self.sections: dict[str, Pricer | EdgePricer] = dict(sections or {})
        pricers = [p for p in self.sections.values() if isinstance(p, Pricer)]
        self.by_kind: dict[str, Pricer] = {
            str(kind): p for p in pricers for kind in getattr(p, "kinds", None) or ()
        }
        self.cpu = next((p for p in pricers if p.basis == Basis.CPU), None)
        self.analytic = next((p for p in pricers if p.basis == Basis.ANALYTIC), None)
        self.edges = next((p for p in self.sections.values() if isinstance(p, EdgePricer)), None)

    @classmethod
    def from_bundle(cls, learned: LearnedPricer, bundle: Mapping[str, Any]) -> PricerRegistry:
        """The registry of a device whose bundle is ``bundle`` (its ``pricing`` sections)."""
        sections = bundle.get("pricing") or {}
        if not isinstance(sections, Mapping):
            raise PredictorError(f"{learned.device}: the bundle's 'pricing' is not an object")
        return cls(learned, section_pricers(sections))

    @property
    def device(self) -> str:
        return self.learned.device

    def kernels(self, graph: Graph) -> tuple[Kernel, ...]:
        return self.learned.kernels(graph)

    def pricer_for(self, kernel: Kernel) -> Pricer:
        """The pricer of ``kernel`` (see the routing rules above)."""
        if kernel.kind == "free":
            return self.free
        if kernel.kind in self.by_kind:
            return self.by_kind[kernel.kind]
        if not kernel.on_gpu:
            return self.cpu or self.learned
        if self.learned.covers(kernel):
            return self.learned
        return self.analytic or self.learned

    def route(self, kernels: Sequence[Kernel]) -> list[tuple[Pricer, list[Kernel]]]:
        """(pricer, its kernels in execution order), pricers in order of first use."""
        groups: dict[int, tuple[Pricer, list[Kernel]]] = {}
        for k in kernels:
            pricer = self.pricer_for(k)
            groups.setdefault(id(pricer), (pricer, []))[1].append(k)
        return list(groups.values())


def section_pricers(sections: Mapping[str, Any]) -> dict[str, Pricer | EdgePricer]:
    """The pricer of each of a bundle's ``pricing`` sections (a bad one: PredictorError)."""
    return {str(n): _section_pricer(str(n), s) for n, s in sections.items()}


def _section_pricer(name: str, section: object) -> Pricer | EdgePricer:
    """The pricer a bundle's ``pricing.<name>`` section describes (see the hook above)."""
    if not isinstance(section, Mapping):
        raise PredictorError(f"pricing section {name!r} is not an object")
    where = PricerRegistry.SECTIONS.get(name, f"tflat.pricing.{name}")
    module_name, _, attr = where.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PredictorError(f"pricing section {name!r}: no pricer module {module_name}") from exc
    if attr:
        found = [getattr(module, attr, None)]
    else:
        found = [
            c
            for _, c in inspect.getmembers(module, inspect.isclass)
            if c.__module__ == module.__name__
            and issubclass(c, (Pricer, EdgePricer))
            and not inspect.isabstract(c)
        ]
    make = getattr(found[0], "from_dict", None) if len(found) == 1 else None
    if make is None:
        raise PredictorError(
            f"pricing section {name!r}: {module_name} must define one pricer with from_dict "
            f"(or name it in PricerRegistry.SECTIONS)"
        )
    pricer = make(section)
    if not isinstance(pricer, (Pricer, EdgePricer)):
        raise PredictorError(f"pricing section {name!r}: {where} made no pricer")
    return pricer


def registry_of(predictor: object) -> PricerRegistry:
    """The registry of an already loaded predictor (GPU or calibrated), with the pricing
    sections of the bundle it came from."""
    from tflat.cpu.predictor import CpuPredictor
    from tflat.predict.predictor import Predictor

    if isinstance(predictor, Predictor):
        return PricerRegistry.from_bundle(GpuLearnedPricer(predictor), predictor.bundle)
    if isinstance(predictor, CpuPredictor):
        return PricerRegistry.from_bundle(CpuLearnedPricer(predictor), predictor.bundle)
    raise TypeError(f"not a tflat predictor: {type(predictor).__name__}")


def registry_for(device: str, db_url: str | None = None) -> PricerRegistry:
    """The registry of ``device`` (its predictor from the database when one is saved there,
    else the shipped one; see :func:`tflat.pricing.predictors.load_predictor`)."""
    from tflat.pricing.predictors import load_predictor

    return registry_of(load_predictor(device, db_url))
