"""rankjax: accelerator-first ranking and recommendation on JAX/Flax."""
import setuptools

# Versions known to work together (see BUILD_NOTES.md, "Pinned versions").
INSTALL_REQUIRES = [
    "jax==0.10.2",
    "jaxlib==0.10.2",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.8",
    "tensorflow-datasets==4.9.10",
    "array-record==0.8.6",
    "ml-collections==1.1.0",
    "absl-py==2.5.1",
    "numpy>=2.0,<2.5",
    "tqdm>=4.66",
    "matplotlib>=3.8",
    "tensorboardX==2.6.5",
    "pyarrow>=15",
    "pyyaml>=6",  # YAML schemas for the generic tabular builder
]

setuptools.setup(
    name="rankjax",
    version="0.1.0",
    description="Accelerator-first ranking and recommendation framework on JAX/Flax.",
    packages=setuptools.find_packages(include=["rankjax", "rankjax.*"]),
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # pyfarmhash: a C reference for our FarmHash Fingerprint64 (CASCADE hashing) in the tests.
        "test": ["pytest>=8", "scikit-learn>=1.4", "pyfarmhash==0.5.1", "hypothesis>=6"],
        "bench": ["scikit-learn>=1.4"],
    },
)
