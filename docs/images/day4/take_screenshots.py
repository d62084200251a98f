"""The web page's screenshots in docs/images/day4/, taken by headless Chromium.

    python docs/images/day4/take_screenshots.py [--work runs/screenshots] [--only digits,gan]

Trains a model of each family well enough to look right (the digits CNN for 10 epochs, the
detector by the README's recipe: a few minutes on a laptop's CPU), exports and serves each,
then drives the page as a person would: draws a digit, picks a detection example, prices
a house, samples the GANs, lets the character model write, opens the API page. Trained
models are kept under ``--work`` and reused on the next run. Needs Debian's ``chromium`` and
``chromium-driver`` (``apt-get install chromium chromium-driver``) and ``selenium``.
"""

import argparse
import itertools
import shutil
import time
from pathlib import Path

import jax

jax.config.update("jax_platforms", "cpu")

import adljax  # noqa: E402
from adljax.experiment import runner_for  # noqa: E402
from adljax.serving.service import create_app, running  # noqa: E402

HERE = Path(__file__).resolve().parent

GAN = {"loss": "wgan_gp", "n_critic": 5, "gradient_penalty": 1.0, "beta2": 0.9}
# name -> (model, dataset, run_experiment options)
RECIPES = {
    "digits": ("cnn", "digits", {"epochs": 10}),
    "house-prices": ("linear", "housing_synthetic", {"epochs": 20, "learning_rate": 1e-2}),
    "detector": (
        "detector",
        "shapes",
        {"epochs": 20, "batch_size": 32, "learning_rate": 3e-3, "augment": True},
    ),
    "gan": ("gan", "ring8", {"epochs": 60, "batch_size": 256, "model_config_overrides": GAN}),
    "charlm": (
        "charlm",
        "pydoc_chars",
        {
            "epochs": 8,
            "learning_rate": 3e-3,
            "model_config_overrides": {"cell": "gru", "hidden_size": 128},
        },
    ),
    # not in the docs by default (--only dcgan,docs)
    "dcgan": ("dcgan", "digits", {"epochs": 30}),
}
DEFAULT = ("digits", "house-prices", "detector", "gan", "charlm")

# A "3" drawn on the 280x280 canvas: pixel offsets from its centre, one list per stroke.
THREE = [
    [(-60, -90), (-20, -110), (30, -108), (60, -80), (50, -40), (10, -15), (-20, -10)],
    [(10, -15), (55, 10), (65, 55), (40, 95), (-10, 108), (-60, 90)],
]


def browser(width: int = 1280, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = next(
        (
            shutil.which(n)
            for n in ("chromium", "chromium-browser", "google-chrome")
            if shutil.which(n)
        ),
        None,
    )
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        raise SystemExit("needs Chromium and its driver: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument("--hide-scrollbars")
    return webdriver.Chrome(service=Service(driver_path), options=options)


def wait(driver, script: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"the page never satisfied: {script}")


def ready(driver) -> None:
    wait(driver, "return document.body.dataset.ready === 'true'")
    wait(driver, "return window.adljax.busy === 0 && !window.adljax.writing")


def shoot(driver, path: Path, width: int = 1280) -> None:
    """The whole page (up to 2400 pixels high) as a PNG."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    metrics = {"width": width, "height": min(int(height), 2400), "deviceScaleFactor": 1}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "mobile": False})
    time.sleep(0.3)
    driver.save_screenshot(str(path))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    print("wrote", path)


def train(name: str, work: Path) -> Path:
    export = work / name / "export"
    if export.exists():
        return export
    model, dataset, options = RECIPES[name]
    checkpoint = work / name / "checkpoints"
    started = time.monotonic()
    runner_for(model)(model, dataset, checkpoint_dir=checkpoint, progress=False, **options)
    adljax.serving.export(checkpoint, export, platforms=("cpu",))
    print(f"trained {name} in {time.monotonic() - started:.0f} s")
    return export


def page_digits(driver, url: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    driver.get(url)
    ready(driver)
    canvas = driver.find_element("id", "draw-canvas")
    for stroke in THREE:
        before = driver.execute_script("return window.adljax.done")
        actions = ActionChains(driver).move_to_element_with_offset(canvas, *stroke[0])
        actions.click_and_hold()
        for (x0, y0), (x1, y1) in itertools.pairwise(stroke):
            for t in (0.25, 0.5, 0.75, 1.0):
                actions.move_to_element_with_offset(
                    canvas, round(x0 + t * (x1 - x0)), round(y0 + t * (y1 - y0))
                )
        actions.release().perform()
        wait(driver, f"return window.adljax.done > {before}")


def page_detector(driver, url: str) -> None:
    from selenium.webdriver.common.keys import Keys

    driver.get(url)
    ready(driver)
    before = driver.execute_script("return window.adljax.done")
    driver.find_element("id", "min-score").send_keys(Keys.RIGHT, Keys.RIGHT)  # 0.3 -> 0.4
    wait(driver, f"return window.adljax.done >= {before + 2}")
    before = driver.execute_script("return window.adljax.done")
    driver.find_element("id", "detect-example-1").click()
    wait(driver, f"return window.adljax.done > {before}")


def page_house(driver, url: str) -> None:
    driver.get(url)
    ready(driver)
    field = driver.find_element("id", "feature-0")
    field.clear()
    field.send_keys("150")
    before = driver.execute_script("return window.adljax.done")
    driver.find_element("id", "predict").click()
    wait(driver, f"return window.adljax.done > {before}")


def page_generator(driver, url: str) -> None:
    driver.get(url)
    ready(driver)
    from selenium.webdriver.common.keys import Keys

    slider = driver.find_element("id", "frame-slider")
    slider.send_keys(Keys.RIGHT, Keys.RIGHT, Keys.RIGHT)


def page_charlm(driver, url: str) -> None:
    driver.get(url)
    ready(driver)
    prompt = driver.find_element("id", "prompt")
    prompt.clear()
    prompt.send_keys("The ")
    length = driver.find_element("id", "length")
    length.clear()
    length.send_keys("300")
    driver.find_element("id", "write").click()
    wait(driver, "return document.getElementById('write-status').dataset.state === 'done'", 300)


PAGES = {
    "digits": page_digits,
    "house-prices": page_house,
    "detector": page_detector,
    "gan": page_generator,
    "dcgan": page_generator,
    "charlm": page_charlm,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/screenshots"))
    parser.add_argument(
        "--only", default=",".join(DEFAULT), help=f"comma-separated, of {', '.join(RECIPES)}, docs"
    )
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    driver = browser()
    try:
        for name in names:
            if name == "docs":
                with running(create_app(adljax.serving.load(train("digits", args.work)))) as url:
                    driver.get(f"{url}/docs")
                    wait(driver, "return window.adljax.done > 0")
                    shoot(driver, args.out / "page-docs.png")
                continue
            artifact = adljax.serving.load(train(name, args.work))
            with running(create_app(artifact, max_batch_size=64)) as url:
                PAGES[name](driver, url)
                shoot(driver, args.out / f"page-{name}.png")
            errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            for entry in errors:
                print("browser:", entry["message"])
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
