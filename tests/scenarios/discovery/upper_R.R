# Databricks notebook source
print("upper R")
