import jax

def step(p, s, x)
    return s, x
