: A leak with a filtered noise current: a STATE, an ASSIGNED and an NMODL
: RANDOM stream, for the NEURON adapter's tests of compiled mechanisms.
NEURON {
    SUFFIX noisyleak
    NONSPECIFIC_CURRENT i
    RANGE g, e, sigma, x, drawn
    RANDOM rv
}

UNITS {
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    g = 0.0003 (S/cm2)
    e = -65 (mV)
    sigma = 0.02 (mA/cm2)
}

ASSIGNED {
    v (mV)
    i (mA/cm2)
    drawn
}

STATE { x }

INITIAL { x = 0 }

BEFORE BREAKPOINT { drawn = random_normal(rv) }

BREAKPOINT {
    SOLVE filter METHOD cnexp
    i = g * (v - e) + sigma * x
}

DERIVATIVE filter { x' = (drawn - x) / 2 }
