"""Screenshots of the service's page for each family, taken by headless Chromium.

    python docs/images/day4/take_screenshots.py      # a few minutes on 2 CPU cores

Trains small models with the command line's code path (``run_experiment``), exports them,
serves each on a free port and saves ``page-<name>.png`` beside this file.
"""

import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import adljax
from adljax.experiment import runner_for
from adljax.serving.service import create_app, running

HERE = Path(__file__).parent
GAN = {"loss": "wgan_gp", "n_critic": 5, "gradient_penalty": 1.0, "beta2": 0.9}
RUNS = {
    "digits": ("cnn", "digits", {"epochs": 10}),
    "house-prices": ("linear", "housing_synthetic", {"epochs": 20, "learning_rate": 1e-2}),
    "detector": (
        "detector",
        "shapes",
        {"epochs": 12, "batch_size": 32, "learning_rate": 3e-3, "augment": True},
    ),
    "gan": (
        "gan",
        "ring8",
        {"epochs": 60, "batch_size": 256, "model_config_overrides": GAN},
    ),
    "charlm": ("charlm", "pydoc_chars", {"epochs": 2}),
}


def _draw_seven(browser) -> None:
    pad = browser.find_element(By.ID, "pad")
    chain = ActionChains(browser).move_to_element_with_offset(pad, -90, -100).click_and_hold()
    chain.move_by_offset(170, 0).move_by_offset(-80, 200).release().perform()


def main(names: list[str]) -> None:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,900"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            model, dataset, settings = RUNS[name]
            checkpoint = Path(scratch) / name
            runner_for(model)(model, dataset, checkpoint_dir=checkpoint, progress=False, **settings)
            path = adljax.serving.export(checkpoint, Path(scratch) / f"{name}.export")
            with running(create_app(adljax.serving.load(path))) as url:
                browser.get(url)
                WebDriverWait(browser, 60).until(
                    lambda d: d.execute_script("return document.body.dataset.ready === 'true'")
                )
                if name == "digits":
                    _draw_seven(browser)
                elif name == "house-prices":
                    browser.find_element(By.ID, "predict").click()
                elif name == "detector":
                    browser.find_elements(By.CSS_SELECTOR, "#examples button")[0].click()
                elif name == "gan":
                    browser.find_element(By.ID, "interpolate").click()
                elif name == "charlm":
                    browser.find_element(By.ID, "write").click()
                    WebDriverWait(browser, 120).until(
                        lambda d: d.find_element(By.ID, "generated").get_attribute("data-written")
                    )
                time.sleep(1.5)
                browser.save_screenshot(str(HERE / f"page-{name}.png"))
                print(f"page-{name}.png")
    browser.quit()


if __name__ == "__main__":
    main(sys.argv[1:] or list(RUNS))
