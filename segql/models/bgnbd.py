"""BG/NBD (Fader, Hardie and Lee, 2005, "Counting Your Customers the Easy Way"): the standard
"will this customer buy again" model, as a baseline for `segql train`.

Each customer buys at a Poisson rate lambda ~ Gamma(r, alpha) while alive and, after each purchase,
drops out with probability p ~ Beta(a, b). The four parameters are fitted by maximum likelihood
(equation 6 of the paper) on each customer's (x, t_x, T): purchases, the time of the last one
and the length of the observation, all measured from the customer's birth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float

    def p_alive(self, x: Any, t_x: Any, big_t: Any) -> Any:
        import numpy as np

        x, t_x, big_t = (np.asarray(v, dtype=float) for v in (x, t_x, big_t))
        ratio = np.log(self.alpha + big_t) - np.log(self.alpha + t_x)
        log_term = np.log(self.a) - np.log(np.maximum(self.b + x - 1, 1e-12))
        log_term += (self.r + x) * ratio
        odds = np.where(x > 0, np.exp(np.minimum(log_term, 700)), 0.0)
        return 1 / (1 + odds)

    def p_purchase(self, x: Any, t_x: Any, big_t: Any, horizon: float) -> Any:
        """P(at least one purchase in the next `horizon`): alive, and the Poisson clock fires
        under the posterior Gamma(r + x, alpha + T) of the rate."""
        import numpy as np

        x, big_t = np.asarray(x, dtype=float), np.asarray(big_t, dtype=float)
        none = ((self.alpha + big_t) / (self.alpha + big_t + horizon)) ** (self.r + x)
        return self.p_alive(x, t_x, big_t) * (1 - none)


def log_likelihood(params: Any, x: Any, t_x: Any, big_t: Any) -> Any:
    import numpy as np
    from scipy.special import gammaln

    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + big_t)
    a4 = np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x)
    both = np.where(x > 0, np.logaddexp(a3, a4), a3)
    return a1 + a2 + both


def fit(x: Any, t_x: Any, big_t: Any) -> BgNbd:
    import numpy as np
    from scipy.optimize import minimize

    x, t_x, big_t = (np.asarray(v, dtype=float) for v in (x, t_x, big_t))

    def loss(log_params: Any) -> float:
        return -float(np.sum(log_likelihood(np.exp(log_params), x, t_x, big_t)))

    best = minimize(loss, np.zeros(4), method="Nelder-Mead", options={"maxiter": 4000})
    best = minimize(loss, best.x, method="L-BFGS-B")
    r, alpha, a, b = np.exp(best.x)
    return BgNbd(float(r), float(alpha), float(a), float(b))
