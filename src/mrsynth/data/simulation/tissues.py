"""Tissue parameters (PD, T1, T2, ADC) of normal brain and lesion tissue at 1.5 T and 3 T.

Sources (values rounded; measured relaxation times depend on the mapping method):

* Normal tissue T1/T2 at 3 T: Wansapura et al., "NMR relaxation times in the human brain at
  3.0 tesla", JMRI 9:531-538 (1999): GM T1 1331 ms, T2 110 ms; WM T1 832 ms, T2 80 ms.
* Normal tissue T1 at 1.5 T: Wright et al., "Water proton T1 measurements in brain tissue at 7, 3,
  and 1.5 T using IR-EPI, IR-TSE, and MPRAGE", MAGMA 21:121-130 (2008): WM 646 ms, GM 1197 ms.
* Normal tissue T2 at 1.5 T: Stanisz et al., "T1, T2 relaxation and magnetization transfer in
  tissue at 3T", MRM 54:507-512 (2005), 1.5 T columns: WM 72 ms, GM 95 ms.
* CSF: T1 of roughly 4 s and T2 of roughly 2 s at both fields (e.g. Lu et al., "Routine clinical
  brain MRI sequences for use at 3.0 Tesla", JMRI 22:13-22 (2005)); approximate.
* Proton density (water content relative to CSF): WM 0.70, GM 0.80 (Tofts (ed.), "Quantitative
  MRI of the Brain", Wiley 2003, ch. 4).
* ADC in 1e-3 mm^2/s: normal WM 0.70, GM 0.80 (Helenius et al., AJNR 23:194-199 (2002));
  free water at 37 C about 3.0 (CSF); acute infarct about 55-60 % of normal parenchyma
  (Schlaug et al., Neurology 49:113-119 (1997)); vasogenic oedema about 1.3-1.6, enhancing
  glioblastoma about 1.0-1.2, necrosis about 2 and chronic MS plaques about 1.0-1.1 (ranges
  reported across the DWI literature).
* Lesion relaxation times are illustrative values chosen within published ranges to reproduce the
  textbook appearance (prolonged T1/T2 of oedema and necrosis, fluid-like necrosis, mildly
  prolonged T2 of an acute infarct, MS plaques about 1.5x WM T1); they are not single measurements.
* Gadolinium: r1 of gadobutrol in plasma 5.2 (1.5 T) and 5.0 (3 T) per mM per s (Rohrer et al.,
  Invest Radiol 40:715-724 (2005)).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping


@dataclass(frozen=True)
class TissueParameters:
    """MR properties of one tissue: relative proton density, T1 and T2 in ms, ADC in 1e-3 mm^2/s."""

    pd: float
    t1: float
    t2: float
    adc: float


#: Tissue classes, in the order the simulator stacks their probability maps.
TISSUES: tuple[str, ...] = ("gm", "wm", "csf", "necrosis", "oedema", "enhancing", "stroke", "ms")

_TABLE: Mapping[float, Mapping[str, TissueParameters]] = MappingProxyType({
    1.5: MappingProxyType({
        "gm": TissueParameters(pd=0.80, t1=1197.0, t2=95.0, adc=0.80),
        "wm": TissueParameters(pd=0.70, t1=646.0, t2=72.0, adc=0.70),
        "csf": TissueParameters(pd=1.00, t1=4000.0, t2=2000.0, adc=3.00),
        "necrosis": TissueParameters(pd=0.95, t1=2400.0, t2=450.0, adc=2.00),
        "oedema": TissueParameters(pd=0.86, t1=1300.0, t2=190.0, adc=1.50),
        "enhancing": TissueParameters(pd=0.82, t1=1250.0, t2=140.0, adc=1.10),
        "stroke": TissueParameters(pd=0.82, t1=1060.0, t2=100.0, adc=0.45),
        "ms": TissueParameters(pd=0.78, t1=1000.0, t2=110.0, adc=1.05),
    }),
    3.0: MappingProxyType({
        "gm": TissueParameters(pd=0.80, t1=1331.0, t2=110.0, adc=0.80),
        "wm": TissueParameters(pd=0.70, t1=832.0, t2=80.0, adc=0.70),
        "csf": TissueParameters(pd=1.00, t1=4200.0, t2=2000.0, adc=3.00),
        "necrosis": TissueParameters(pd=0.95, t1=2800.0, t2=400.0, adc=2.00),
        "oedema": TissueParameters(pd=0.86, t1=1700.0, t2=180.0, adc=1.50),
        "enhancing": TissueParameters(pd=0.82, t1=1650.0, t2=130.0, adc=1.10),
        "stroke": TissueParameters(pd=0.82, t1=1250.0, t2=115.0, adc=0.45),
        "ms": TissueParameters(pd=0.78, t1=1250.0, t2=120.0, adc=1.05),
    }),
})

_GD_R1_PER_MM_PER_S: Mapping[float, float] = MappingProxyType({1.5: 5.2, 3.0: 5.0})

#: Tissues that take up gadolinium (only the enhancing tumour rim; normal brain has an intact BBB).
ENHANCING_TISSUES: tuple[str, ...] = ("enhancing",)


def supported_field_strengths() -> tuple[float, ...]:
    """Field strengths (tesla) with a tissue table."""
    return tuple(sorted(_TABLE))


def tissue_table(field_strength: float) -> Mapping[str, TissueParameters]:
    """Tissue name -> parameters at ``field_strength`` (1.5 or 3.0 T); ``ValueError`` otherwise."""
    for field, table in _TABLE.items():
        if abs(field - field_strength) < 1e-6:
            return table
    raise ValueError(f"no tissue table for {field_strength} T; supported: {supported_field_strengths()}")


def gadolinium_relaxivity(field_strength: float) -> float:
    """r1 of the contrast agent in 1/(mM s) at ``field_strength``."""
    tissue_table(field_strength)  # validates the field strength
    return min(_GD_R1_PER_MM_PER_S.items(), key=lambda item: abs(item[0] - field_strength))[1]


def post_contrast_t1(t1_ms: float, r1_per_mm_per_s: float, concentration_mm: float) -> float:
    """T1 (ms) after gadolinium uptake: 1/T1' = 1/T1 + r1 * C."""
    rate_per_ms = 1.0 / t1_ms + r1_per_mm_per_s * concentration_mm / 1000.0
    return 1.0 / rate_per_ms
