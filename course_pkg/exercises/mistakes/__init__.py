"""Planted mistakes, one module per chapter that has more than fit beside its exercises: the wrong answers
an exercise recognises, to give a learner whose answer behaves like one of them advice that fits."""
